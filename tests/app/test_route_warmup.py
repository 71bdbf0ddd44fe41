"""A serving process builds its routes before its first request.

FastAPI builds an included router's route state lazily, on the first request that reaches
it (0.2-2 s of CPU per router here), so the first requests of a fresh process paid for the
whole API. ``warm_routes`` (called by ``app_factory``) builds it up front; this checks that a
request after it builds nothing, and that one without it would have.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, routing
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.main import warm_routes
from app.models import Role
from tests.conftest import TEST_SECRET
from tests.factories import auth_headers, make_user


def _builds_during_first_requests(
    app: FastAPI, db: Session, monkeypatch: pytest.MonkeyPatch
) -> int:
    built = 0
    original = routing._IncludedRouter._build_effective_context

    def counting(self: Any, route: Any) -> Any:
        nonlocal built
        built += 1
        return original(self, route)

    monkeypatch.setattr(routing._IncludedRouter, "_build_effective_context", counting)
    headers = auth_headers(make_user(db, Role.ADMIN), TEST_SECRET)
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/api/v1/users/me", "/api/v1/requests", "/api/v1/stats"):
            assert client.get(path, headers=headers).status_code == 200
    return built


class TestWarmRoutes:
    def test_a_warmed_app_builds_no_route_state_on_its_first_requests(
        self, app: FastAPI, db: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert warm_routes(app) >= len(app.openapi()["paths"])
        assert _builds_during_first_requests(app, db, monkeypatch) == 0

    def test_a_cold_app_would_have_built_it_on_the_request_path(
        self, app: FastAPI, db: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert _builds_during_first_requests(app, db, monkeypatch) > 0
