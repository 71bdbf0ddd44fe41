"""Authentication stays off the write path, against the real engine and session wiring.

On SQLite a write transaction is the database's one write lock: argon2 (~260 ms) inside it
stalled every writer, and a GET that wrote ``last_used_at`` failed as soon as anyone else
wrote. These tests run the app with its own engine on a fresh database of each backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from app.auth import service as auth_service
from app.common import credentials
from app.db import session_scope
from app.main import create_app
from app.models import ApiKey, Role, User
from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD, auth_headers, make_user
from tests.live import BACKENDS, own_database, settings_for

API = "/api/v1"


@dataclass
class Live:
    app: FastAPI
    client: TestClient
    engine: Engine
    backend: str

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with own_database(request.param, tmp_path_factory.mktemp("authpath")) as url:
        app = create_app(settings_for(url))
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Live(app, client, app.state.engine, request.param)


@pytest.fixture
def admin(live: Live) -> User:
    with live.session() as session:
        user = make_user(session, Role.ADMIN)
        session.commit()
        return user


def test_argon2_runs_with_no_connection_held(
    live: Live, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every hash and verify of a password happens while the request holds no connection,
    so no transaction (on SQLite: no ``BEGIN IMMEDIATE``) can wrap it."""
    held: list[tuple[str, int]] = []

    def checked_out() -> int:
        pool = live.engine.pool
        assert isinstance(pool, QueuePool)  # file SQLite and PostgreSQL alike
        return pool.checkedout()

    def watch(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def watched(*args: Any) -> Any:
            held.append((name, checked_out()))
            return real(*args)

        return watched

    monkeypatch.setattr(auth_service, "verify_secret", watch("verify", credentials.verify_secret))
    monkeypatch.setattr(auth_service, "hash_secret", watch("hash", credentials.hash_secret))
    client = live.client
    token = client.post(f"{API}/auth/token", data={"username": admin.email, "password": PASSWORD})
    assert token.status_code == 200
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    staff = client.post(
        f"{API}/users",
        json={
            "email": f"coord-{live.backend}@example.com",
            "password": "a long enough passphrase",
            "full_name": "协调员",
            "role": "coordinator",
            "region_prefixes": ["35"],
        },
        headers=headers,
    )
    assert staff.status_code == 201, staff.text
    changed = client.post(
        f"{API}/users/me/password",
        json={"current_password": PASSWORD, "new_password": "another long passphrase"},
        headers=headers,
    )
    assert changed.status_code == 204, changed.text
    assert [name for name, _ in held] == ["verify", "hash", "verify", "hash"]
    assert all(count == 0 for _, count in held), held


def test_a_read_with_a_key_succeeds_while_another_transaction_writes(
    live: Live, admin: User
) -> None:
    client = live.client
    created = client.post(
        f"{API}/api-keys", json={"name": "erp"}, headers=auth_headers(admin, TEST_SECRET)
    )
    assert created.status_code == 201
    key, key_id = created.json()["key"], created.json()["id"]
    with live.engine.connect() as writer, writer.begin():
        # SQLite: BEGIN IMMEDIATE holds the write lock; PostgreSQL: the key's row is locked.
        writer.execute(text("UPDATE users SET full_name = full_name WHERE id = :id"), {"id": 1})
        writer.execute(select(ApiKey.id).where(ApiKey.id == key_id).with_for_update())
        for _ in range(3):
            response = client.get(f"{API}/users/me", headers={"X-API-Key": key})
            assert response.status_code == 200, response.text
    usage = live.app.state.api_key_usage
    written = usage.flush(lambda: session_scope(live.app.state.session_factories["write"]))
    assert written == 1
    with live.session() as session:
        row = session.get(ApiKey, key_id)
        assert row is not None
        assert row.last_used_at is not None
