"""Route plans (app/common/route_plan.py): every ``OneHopRoute`` has one or is known to
fall back, and a planned request answers byte for byte as FastAPI's own handler does, for
valid requests and for every kind of error, on both databases.

The suite's usual ``app`` replaces ``get_db`` through ``dependency_overrides``, which sends
every request to FastAPI's handler; here the app keeps the production ``get_db``, with its
sessions made savepoints of the test's connection, and FastAPI's handler is chosen by
setting an override nobody calls.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

import fastapi.routing
import httpx
import pytest
from fastapi import Cookie, FastAPI, Header, Query
from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import Headers, QueryParams

from app.common.route_plan import RoutePlan, _ModelParams, _read_params, compile_plan
from app.db import READ_ONLY
from app.deps import OneHopRoute
from app.main import create_app
from app.models import HelpRequest
from app.settings import Settings
from tests.app.conftest import Cast
from tests.factories import make_request

# (method, path) of the OneHopRoutes FastAPI's handler serves on every request, and why.
FALLING_BACK = {
    ("POST", "/api/v1/auth/token"): "reads a form",
    ("POST", "/api/v1/imports/{kind}"): "reads a form",
}
REQUEST_ID = {"X-Request-ID": "route-plan-test"}


def _never_called() -> None:
    """The key of the override that sends requests to FastAPI's handler."""


def test_every_one_hop_route_has_a_plan_or_is_known_to_fall_back() -> None:
    app = create_app(Settings(environment="test", database_url="sqlite://"), manage_engine=False)
    planned, falling_back = 0, {}
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, OneHopRoute):
            continue
        plan = compile_plan(context._route_context or context.route)
        if isinstance(plan, RoutePlan):
            planned += 1
        else:
            for method in context.methods or ():
                falling_back[(method, context.path)] = plan
    assert falling_back == FALLING_BACK
    assert planned > 90


@pytest.fixture
def live_app(db: Session, engine: Engine, settings: Settings) -> FastAPI:
    """The app with the production ``get_db``: its transactions are savepoints of the
    test's, so what a request commits is rolled back with the test."""
    application = create_app(settings, manage_engine=False)
    application.state.engine = engine
    connection = db.get_bind()
    assert isinstance(connection, Connection)

    def factory(**info: Any) -> sessionmaker[Session]:
        return sessionmaker(
            bind=connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
            autoflush=False,
            info=info or None,
        )

    application.state.session_factories = {"write": factory(), "read": factory(**{READ_ONLY: True})}
    return application


@pytest.fixture
def live(live_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(live_app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def solves(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts FastAPI's ``solve_dependencies`` runs from its handler (none on a plan)."""
    calls: list[int] = []
    real = fastapi.routing.solve_dependencies  # type: ignore[attr-defined]

    async def counted(**kwargs: Any) -> Any:
        calls.append(1)
        return await real(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    return calls


Call = Callable[..., tuple[httpx.Response, httpx.Response]]


@pytest.fixture
def both(live: TestClient, live_app: FastAPI, solves: list[int], db: Session) -> Call:
    """The same request through the plan and through FastAPI's handler (in that order);
    ``undo``: what the first one wrote is rolled back before the second."""
    connection = db.get_bind()
    assert isinstance(connection, Connection)

    def call(
        method: str, url: str, *, planned: bool | None = True, undo: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["headers"] = REQUEST_ID | kwargs.get("headers", {})
        solves.clear()
        savepoint = connection.begin_nested() if undo else None
        fast = live.request(method, url, **kwargs)
        if savepoint is not None:
            savepoint.rollback()
        # A request the plan takes runs no FastAPI solve; one it leaves runs it once (None:
        # FastAPI's handler refuses it before it solves anything).
        if planned is not None:
            assert len(solves) == (0 if planned else 1), (method, url, fast.text)
        live_app.dependency_overrides[_never_called] = _never_called
        try:
            solves.clear()
            slow = live.request(method, url, **kwargs)
            assert len(solves) == (1 if planned is not None else 0)
        finally:
            live_app.dependency_overrides.clear()
        return fast, slow

    return call


def same(fast: httpx.Response, slow: httpx.Response, *, masked: tuple[str, ...] = ()) -> None:
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    assert fast.headers.multi_items() == slow.headers.multi_items()
    if not masked:
        assert fast.content == slow.content
        return
    fast_body, slow_body = fast.json(), slow.json()
    for key in masked:
        assert (key in fast_body) == (key in slow_body)
        fast_body.pop(key, None), slow_body.pop(key, None)
    assert fast_body == slow_body


@pytest.fixture
def filed(db: Session, cast: Cast) -> HelpRequest:
    request = make_request(db, cast.ent, status="submitted")
    db.commit()
    return request


class TestValidRequests:
    def test_lists(self, both: Call, cast: Cast, filed: HelpRequest) -> None:
        staff = cast.headers(cast.admin)
        for url in (
            "/api/v1/requests?limit=20",
            f"/api/v1/requests?limit=1&status=submitted&enterprise_id={cast.ent.id}",
            "/api/v1/enterprises?limit=20",
            "/api/v1/providers?limit=20",
            "/api/v1/assignments?limit=20",
            "/api/v1/users/me",
            "/api/v1/requests?limit=20&unknown=1",  # ignored, as FastAPI ignores it
        ):
            fast, slow = both("GET", url, headers=staff)
            assert fast.status_code == 200, fast.text
            same(fast, slow)

    def test_one_request_with_its_etag(self, both: Call, cast: Cast, filed: HelpRequest) -> None:
        fast, slow = both("GET", f"/api/v1/requests/{filed.id}", headers=cast.headers(cast.admin))
        assert fast.status_code == 200, fast.text
        assert fast.headers["etag"]
        same(fast, slow)

    def test_an_api_key_caller(self, both: Call, live: TestClient, cast: Cast) -> None:
        made = live.post(
            "/api/v1/api-keys", json={"name": "k"}, headers=cast.headers(cast.ent_user)
        )
        assert made.status_code == 201, made.text
        key = {"X-API-Key": made.json()["key"]}
        fast, slow = both("GET", "/api/v1/users/me", headers=key)
        assert fast.status_code == 200, fast.text
        same(fast, slow)

    def test_filing_a_request(self, both: Call, cast: Cast) -> None:
        payload = {"category": "digital_transformation", "title": "上ERP系统", "urgency": 3}
        fast, slow = both(
            "POST", "/api/v1/requests", json=payload, headers=cast.headers(cast.ent_user)
        )
        assert fast.status_code == 201, fast.text
        assert fast.json()["id"] != slow.json()["id"]
        same(fast, slow, masked=("id", "created_at", "updated_at", "submitted_at"))

    def test_editing_a_request(self, both: Call, cast: Cast, filed: HelpRequest) -> None:
        """A synchronous dependency (the request loaded by id), a header and the ETag a
        dependency's ``Response`` carries."""
        fast, slow = both(
            "PATCH",
            f"/api/v1/requests/{filed.id}",
            json={"title": "换一个标题"},
            headers=cast.headers(cast.admin) | {"If-Match": f'"{filed.version}"'},
            undo=True,
        )
        assert fast.status_code == 200, fast.text
        assert fast.headers["etag"] != f'"{filed.version}"'
        same(fast, slow, masked=("updated_at",))


class TestErrors:
    def test_stale_and_missing_versions(self, both: Call, cast: Cast, filed: HelpRequest) -> None:
        url, staff = f"/api/v1/requests/{filed.id}", cast.headers(cast.admin)
        for precondition, status in (({}, 428), ({"If-Match": '"99"'}, 412)):
            fast, slow = both("PATCH", url, json={"title": "换一个"}, headers=staff | precondition)
            assert fast.status_code == status, fast.text
            same(fast, slow)

    def test_missing_and_bad_credentials(self, both: Call) -> None:
        for headers in ({}, {"Authorization": "Bearer nonsense"}, {"X-API-Key": "nonsense"}):
            fast, slow = both("GET", "/api/v1/requests?limit=20", headers=headers)
            assert fast.status_code == 401
            same(fast, slow)

    def test_the_wrong_role(self, both: Call, cast: Cast) -> None:
        payload = {"category": "digital_transformation", "title": "上ERP系统", "urgency": 3}
        fast, slow = both(
            "POST", "/api/v1/requests", json=payload, headers=cast.headers(cast.expert_user)
        )
        assert fast.status_code == 403
        same(fast, slow)

    def test_not_found(self, both: Call, cast: Cast) -> None:
        fast, slow = both("GET", "/api/v1/requests/987654", headers=cast.headers(cast.admin))
        assert fast.status_code == 404
        same(fast, slow)

    @pytest.mark.parametrize(
        "url",
        [
            "/api/v1/requests?limit=abc",
            "/api/v1/requests?limit=20&min_urgency=9",
            "/api/v1/requests?limit=20&status=nonsense",
            "/api/v1/requests/abc",
            "/api/v1/requests/0",
            "/api/v1/enterprises?limit=0",
        ],
    )
    def test_bad_parameters(self, both: Call, cast: Cast, url: str) -> None:
        fast, slow = both("GET", url, headers=cast.headers(cast.admin), planned=False)
        assert fast.status_code in (400, 422), fast.text
        same(fast, slow)

    def test_a_bad_parameter_without_credentials_is_still_401(self, both: Call) -> None:
        fast, slow = both("GET", "/api/v1/requests?limit=abc", planned=False)
        assert fast.status_code == 401
        same(fast, slow)

    @pytest.mark.parametrize(
        ("content", "content_type"),
        [
            (b'{"title": "x"}', "application/json"),  # fields missing or too short
            (b'{"title": ', "application/json"),  # not JSON
            (b"[1, 2]", "application/json"),
            (b'{"category": "digital_transformation", "title": "ERP", "urgency": 3}', "text/plain"),
            (b'{"category": "digital_transformation", "title": "ERP", "urgency": 3}', ""),
            (b"", "application/json"),
        ],
    )
    def test_bad_bodies(self, both: Call, cast: Cast, content: bytes, content_type: str) -> None:
        headers = cast.headers(cast.ent_user) | (
            {"Content-Type": content_type} if content_type else {}
        )
        fast, slow = both(
            "POST",
            "/api/v1/requests",
            content=content,
            headers=headers,
            planned=None if content == b'{"title": ' else False,
        )
        assert fast.status_code == 422, fast.text
        same(fast, slow)

    def test_a_bad_body_of_the_wrong_role_is_403_first(self, both: Call, cast: Cast) -> None:
        fast, slow = both(
            "POST",
            "/api/v1/requests",
            json={"title": "x"},
            headers=cast.headers(cast.expert_user),
            planned=False,
        )
        assert fast.status_code == 403
        same(fast, slow)


def test_a_broken_plan_is_noticed(both: Call, cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above would see a plan that answers differently."""
    import app.common.route_plan as route_plan

    real = route_plan.serialize_response  # type: ignore[attr-defined]

    async def off_by_one(**kwargs: Any) -> Any:
        return (await real(**kwargs)) + b" "

    monkeypatch.setattr(route_plan, "serialize_response", off_by_one)
    fast, slow = both("GET", "/api/v1/users/me", headers=cast.headers(cast.admin))
    with pytest.raises(AssertionError):
        same(fast, slow)


VALUES = (
    "",
    "0",
    "1",
    "20",
    "-5",
    "abc",
    "submitted",
    "35",
    "3505",
    "true",
    "x" * 201,
    "中文",
    "a_b",
)


def _cases(keys: list[str], rng: random.Random) -> Iterator[list[tuple[str, str]]]:
    yield []
    for key in keys:
        for value in VALUES:
            yield [(key, value)]
        yield [(key, "1"), (key, "2")]
    for _ in range(200):
        chosen = rng.sample(keys, k=min(len(keys), rng.randint(1, 4)))
        yield [(key, rng.choice(VALUES)) for key in chosen for _ in range(rng.choice((1, 1, 2)))]


def _received(source: str, pairs: list[tuple[str, str]]) -> Any:
    if source == "query_params":
        return QueryParams(urlencode(pairs))
    if source == "headers":
        return Headers(raw=[(k.lower().encode(), v.encode()) for k, v in pairs])
    return dict(pairs)  # path parameters, cookies


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[str] = []
    size: Annotated[int, Field(alias="page-size", ge=1)] = 10


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: Annotated[str | None, Field(validation_alias=AliasChoices("name", "n"))] = None
    ids: list[int] | None = None


async def tricky(
    strict: Annotated[Strict, Query()],
    loose: Annotated[Loose | None, Query()],
    many: Annotated[list[int], Query()],
    maybe: Annotated[list[str] | None, Query(alias="m")] = None,
    agent: Annotated[str | None, Header()] = None,
    tracks: Annotated[list[str] | None, Header()] = None,
    crumb: Annotated[int | None, Cookie()] = None,
) -> None:
    """Parameters of each shape the app's routes do not all have."""


def _plans() -> Iterator[tuple[str, RoutePlan]]:
    app = create_app(Settings(environment="test", database_url="sqlite://"), manage_engine=False)
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, OneHopRoute):
            plan = compile_plan(context._route_context or context.route)
            if isinstance(plan, RoutePlan):
                yield str(context.path), plan
    extra = compile_plan(APIRoute("/tricky/{which}", tricky))
    assert isinstance(extra, RoutePlan)
    yield "/tricky", extra


def test_parameters_read_by_a_plan_are_fastapis_own() -> None:
    """Every parameter group of every plan (and of parameters shaped as the app's are not),
    read from many inputs (valid, invalid, repeated, unknown and missing keys), gives
    FastAPI's ``request_params_to_args``'s values and errors."""
    rng = random.Random(7)
    groups = 0
    for path, plan in _plans():
        for node in plan.nodes:
            for group in node.params:
                groups += 1
                keys = ["unknown"] + [
                    key
                    for reader in group.readers or ()
                    for scalar in (reader.fields if isinstance(reader, _ModelParams) else (reader,))
                    for _, key in scalar.aliases
                ]
                for pairs in _cases(keys, rng):
                    received = _received(group.source, pairs)
                    ours = _read_params(group, received)
                    theirs = request_params_to_args(group.fields, received)
                    assert ours[0] == theirs[0], (path, pairs)
                    assert repr(ours[1]) == repr(theirs[1]), (path, pairs)
    assert groups > 100
