"""OneHopRoute: a synchronous endpoint and its request's commit share one worker-thread hop,
with the production ``get_db`` (not the tests' override) on a real database."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Annotated, Any

import anyio.to_thread
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.common.threads import request_threads
from app.db import make_session_factory
from app.deps import DbSession, OneHopRoute, get_db
from app.main import create_app
from app.settings import Settings
from tests.app.conftest import Cast
from tests.factories import make_request

TABLE = "zz_one_hop_notes"


@pytest.fixture
def notes(engine: Engine) -> Iterator[Engine]:
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, note TEXT)"))
    try:
        yield engine
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP TABLE {TABLE}"))


def write_then_refuse(note_id: int, session: DbSession) -> None:
    session.execute(text(f"INSERT INTO {TABLE} (id, note) VALUES (:id, 'n')"), {"id": note_id})
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "after the write")


def note_app(engine: Engine) -> FastAPI:
    router = APIRouter(route_class=OneHopRoute)

    @router.post("/notes/{note_id}")
    def add(note_id: int, session: DbSession) -> dict[str, int]:
        """Write one row."""
        session.execute(text(f"INSERT INTO {TABLE} (id, note) VALUES (:id, 'n')"), {"id": note_id})
        return {"id": note_id}

    @router.post("/broken/{note_id}")
    def add_then_fail(note_id: int, session: DbSession) -> dict[str, int]:
        session.execute(text(f"INSERT INTO {TABLE} (id, note) VALUES (:id, 'n')"), {"id": note_id})
        raise RuntimeError("after the write")

    @router.post("/misfit/{note_id}")
    def add_then_misfit(note_id: int, session: DbSession) -> dict[str, int]:
        session.execute(text(f"INSERT INTO {TABLE} (id, note) VALUES (:id, 'n')"), {"id": note_id})
        return {"id": "not a number"}  # type: ignore[dict-item]  # what the model refuses

    @router.post("/refused/{note_id}")
    def refused(
        note_id: int, session: DbSession, _: Annotated[None, Depends(write_then_refuse)]
    ) -> dict[str, int]:
        return {"id": note_id}

    @router.post("/async/{note_id}")
    async def add_in_the_loop(note_id: int, session: DbSession) -> dict[str, int]:
        session.execute(text(f"INSERT INTO {TABLE} (id, note) VALUES (:id, 'n')"), {"id": note_id})
        return {"id": note_id}

    plain = APIRouter()

    @plain.get("/plain")
    def not_one_hop(session: DbSession) -> dict[str, int]:
        return {"one": 1}

    app = FastAPI()
    app.state.session_factories = {
        "write": make_session_factory(engine),
        "read": make_session_factory(engine, read_only=True),
    }
    app.include_router(router)
    app.include_router(plain)
    return app


def count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(text(f"SELECT count(*) FROM {TABLE}")) or 0)


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the functions run in worker threads (anyio's or the request threads), in order."""
    seen: list[str] = []
    real = anyio.to_thread.run_sync
    real_request_run = request_threads.run

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    async def counted_request_run(func: Any, *args: Any) -> Any:
        seen.append(getattr(func, "__name__", repr(func)))
        return await real_request_run(func, *args)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    monkeypatch.setattr(request_threads, "run", counted_request_run)
    return seen


class TestOneHop:
    def test_the_endpoint_and_its_commit_take_one_hop(self, notes: Engine, hops: list[str]) -> None:
        with TestClient(note_app(notes)) as client:
            response = client.post("/notes/1")
        assert response.status_code == 200
        assert response.json() == {"id": 1}
        assert hops == ["run_and_commit"]
        assert count(notes) == 1
        assert notes.pool.checkedout() == 0  # type: ignore[attr-defined]

    def test_an_endpoint_that_raises_after_writing_leaves_nothing(self, notes: Engine) -> None:
        with TestClient(note_app(notes), raise_server_exceptions=False) as client:
            assert client.post("/broken/2").status_code == 500
        assert count(notes) == 0
        assert notes.pool.checkedout() == 0  # type: ignore[attr-defined]

    def test_a_response_its_model_refuses_leaves_nothing(self, notes: Engine) -> None:
        """The 500 of a response that fails validation is not a write that happened."""
        with TestClient(note_app(notes), raise_server_exceptions=False) as client:
            assert client.post("/misfit/5").status_code == 500
            assert client.post("/notes/6").json() == {"id": 6}  # a fitting one still commits
        assert count(notes) == 1
        assert notes.pool.checkedout() == 0  # type: ignore[attr-defined]

    def test_the_endpoint_keeps_its_name_docs_and_parameters(self, notes: Engine) -> None:
        app = note_app(notes)
        operation = app.openapi()["paths"]["/notes/{note_id}"]["post"]
        assert operation["operationId"].startswith("add_notes")
        assert operation["description"] == "Write one row."
        assert [p["name"] for p in operation["parameters"]] == ["note_id"]
        route = next(r for r in iter_route_contexts(app.routes) if r.path == "/notes/{note_id}")
        assert inspect.iscoroutinefunction(route.endpoint)

    def test_a_dependency_that_raises_after_writing_leaves_nothing(self, notes: Engine) -> None:
        with TestClient(note_app(notes), raise_server_exceptions=False) as client:
            assert client.post("/refused/3").status_code == 401
        assert count(notes) == 0
        assert notes.pool.checkedout() == 0  # type: ignore[attr-defined]

    def test_an_async_endpoint_is_committed_before_the_response(self, notes: Engine) -> None:
        with TestClient(note_app(notes)) as client:
            assert client.post("/async/4").status_code == 200
            assert count(notes) == 1
        assert notes.pool.checkedout() == 0  # type: ignore[attr-defined]

    def test_the_session_is_refused_outside_a_one_hop_route(self, notes: Engine) -> None:
        with TestClient(note_app(notes), raise_server_exceptions=False) as client:
            assert client.get("/plain").status_code == 500


def _uses_get_db(dependant: Dependant) -> bool:
    return any(d.call is get_db or _uses_get_db(d) for d in dependant.dependencies)


def test_every_route_of_the_app_using_the_request_session_is_one_hop() -> None:
    """``get_db``'s transaction is ended by ``OneHopRoute``: any other route would leak it."""
    app = create_app(Settings(environment="test", database_url="sqlite://"), manage_engine=False)
    using = [
        route
        for route in iter_route_contexts(app.routes)
        if isinstance(dependant := getattr(route, "dependant", None), Dependant)
        and _uses_get_db(dependant)
    ]
    assert len(using) > 50
    assert all(isinstance(route.original_route, OneHopRoute) for route in using)


@pytest.mark.parametrize("kind", ["requests", "enterprises", "providers"])
def test_reading_one_object_takes_one_hop(
    client: TestClient, cast: Cast, db: Session, hops: list[str], kind: str
) -> None:
    """The object is loaded in the endpoint's own hop, not in one more for its dependency."""
    object_id = {
        "requests": lambda: make_request(db, cast.ent).id,
        "enterprises": lambda: cast.ent.id,
        "providers": lambda: cast.expert.id,
    }[kind]()
    db.commit()
    url, headers = f"/api/v1/{kind}/{object_id}", cast.headers(cast.admin)
    assert client.get(url, headers=headers).status_code == 200  # the caller is now cached
    hops.clear()
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == object_id
    # The tests' stand-in for ``get_db`` opens and closes its session in hops of its own.
    ours = [name for name in hops if "__enter__" not in name and "__exit__" not in name]
    assert ours == ["run_and_commit"]
