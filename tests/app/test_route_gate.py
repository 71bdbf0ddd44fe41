"""The prefix gate on included routers (``app.api.gate_included_routers``) answers every path
exactly as FastAPI's full scan of the router's routes would, only sooner."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, _IncludedRouter
from fastapi.testclient import TestClient
from starlette.routing import Match

from app.api import _PrefixGate, gate_included_routers
from app.main import create_app
from app.settings import Settings


def _scope(path: str, method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def _sample_paths(app: FastAPI) -> list[str]:
    """Every route's path with its parameters filled in, and near misses of each."""
    paths: set[str] = {"/", "/api", "/api/v1", "/api/v1/", "/nowhere"}
    for included in app.router.routes:
        if not isinstance(included, _IncludedRouter):
            continue
        for route in included.original_router.routes:
            assert isinstance(route, APIRoute)
            path = re.sub(r"\{[^}]+\}", "7", included.include_context.prefix + route.path)
            paths |= {path, path + "/", path + "x", path.rstrip("/") + "/extra", path[:-1]}
    return sorted(paths)


def _gates(app: FastAPI) -> list[_PrefixGate]:
    return [
        route.matches
        for route in app.router.routes
        if isinstance(route, _IncludedRouter) and isinstance(route.matches, _PrefixGate)
    ]


def _app_of_one_router() -> tuple[FastAPI, APIRouter]:
    """An app with one router included under ``/api``, holding ``GET /things``."""
    router = APIRouter()

    @router.get("/things")
    async def things() -> list[int]:
        return []

    app = FastAPI()
    app.include_router(router, prefix="/api")
    return app, router


class TestPrefixGate:
    def test_every_api_and_console_router_is_gated(self, settings: Settings) -> None:
        app = create_app(settings, manage_engine=False)
        included = [r for r in app.router.routes if isinstance(r, _IncludedRouter)]
        assert len(_gates(app)) == len(included) > 20

    def test_each_gate_answers_as_the_full_scan_of_its_router(self, settings: Settings) -> None:
        app = create_app(settings, manage_engine=False)
        paths = _sample_paths(app)
        refused = 0
        for gate in _gates(app):
            for path in paths:
                for method in ("GET", "POST", "DELETE"):
                    gated, full = gate(_scope(path, method)), gate._matches(_scope(path, method))
                    assert gated[0] == full[0], (path, method)
                    refused += full[0] == Match.NONE
        assert refused > 0

    def test_a_route_added_after_gating_is_reached(self) -> None:
        app, router = _app_of_one_router()
        assert gate_included_routers(app.router.routes) == 1
        assert gate_included_routers(app.router.routes) == 0  # one gate per router

        @router.get("/stuff/{n}")  # a literal part the gate had not seen
        async def stuff(n: int) -> int:
            return n

        with TestClient(app) as client:
            assert client.get("/api/things").json() == []
            assert client.get("/api/stuff/3").json() == 3
            assert client.get("/api/nothing").status_code == 404

    def test_routes_added_after_the_first_request_are_reached(self) -> None:
        """The gate has worked out its literal parts by then: adding a route, or including a
        router of new paths, must make it work them out again."""
        app, router = _app_of_one_router()
        gate_included_routers(app.router.routes)
        with TestClient(app) as client:
            assert client.get("/api/things").json() == []
            assert client.get("/api/stuff/3").status_code == 404

            @router.get("/stuff/{n}")
            async def stuff(n: int) -> int:
                return n

            assert client.get("/api/stuff/3").json() == 3
            nested = APIRouter()

            @nested.get("/deep")
            async def deep() -> str:
                return "deep"

            router.include_router(nested, prefix="/more")
            assert client.get("/api/more/deep").json() == "deep"

            @nested.get("/deeper")  # only the nested router's own counter moves
            async def deeper() -> str:
                return "deeper"

            assert client.get("/api/more/deeper").json() == "deeper"
            assert client.get("/api/nothing").status_code == 404
