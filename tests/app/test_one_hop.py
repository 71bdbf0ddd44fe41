"""OneHopRoute: a synchronous endpoint and its request's commit share one worker-thread hop,
with the production ``get_db`` (not the tests' override) on a real database."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import anyio.to_thread
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from app.db import make_session_factory
from app.deps import DbSession, OneHopRoute

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

    app = FastAPI()
    app.state.session_factories = {
        "write": make_session_factory(engine),
        "read": make_session_factory(engine, read_only=True),
    }
    app.include_router(router)
    return app


def count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(text(f"SELECT count(*) FROM {TABLE}")) or 0)


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the functions run in worker threads, in order."""
    seen: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
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

    def test_the_endpoint_keeps_its_name_docs_and_parameters(self, notes: Engine) -> None:
        app = note_app(notes)
        operation = app.openapi()["paths"]["/notes/{note_id}"]["post"]
        assert operation["operationId"].startswith("add_notes")
        assert operation["description"] == "Write one row."
        assert [p["name"] for p in operation["parameters"]] == ["note_id"]
        route = next(r for r in iter_route_contexts(app.routes) if r.path == "/notes/{note_id}")
        assert inspect.iscoroutinefunction(route.endpoint)
