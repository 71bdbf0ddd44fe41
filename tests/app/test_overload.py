"""The request path under overload: it never wedges, and what it cannot do now is a 503.

A live server with a deliberately small pool and thread limit takes a burst far larger than
both. Before admission control such a burst wedged the process (every thread waiting for a
connection, every connection waiting for a thread); now every request is answered,
``/healthz`` answers throughout, and every acknowledged write is stored. Held locks, an
exhausted pool and a full admission queue each answer 503 with ``Retry-After``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.orm import Session

from app.db import make_engine
from app.main import create_app
from app.models import HelpRequest, Role
from tests.conftest import TEST_SECRET
from tests.factories import auth_headers, make_enterprise, make_request, make_user
from tests.live import BACKENDS, own_database, serve, settings_for

BURST_CLIENTS = 48
ROUNDS = 2


@dataclass
class World:
    database_url: str
    enterprise_id: int
    enterprise_headers: dict[str, str]
    coordinator_headers: dict[str, str]


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """A committed database of its own with one enterprise, its user and a coordinator."""
    with own_database(request.param, tmp_path_factory.mktemp("overload")) as url:
        engine = make_engine(url)
        with Session(engine) as session, session.begin():
            enterprise = make_enterprise(session)
            for _ in range(30):
                make_request(session, enterprise)
            ent_user = make_user(session, Role.ENTERPRISE, enterprise_id=enterprise.id)
            coordinator = make_user(session, Role.COORDINATOR, region_prefixes=["35"])
            world = World(
                database_url=url,
                enterprise_id=enterprise.id,
                enterprise_headers=auth_headers(ent_user, TEST_SECRET),
                coordinator_headers=auth_headers(coordinator, TEST_SECRET),
            )
        engine.dispose()
        yield world


def _app(world: World, **limits: Any) -> FastAPI:
    return create_app(settings_for(world.database_url, **limits))


def _client_session(base_url: str, world: World, index: int) -> list[tuple[str, int, int | None]]:
    """One client's rounds of a realistic mix: a filtered list, an object, a create."""
    results: list[tuple[str, int, int | None]] = []
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for round_ in range(ROUNDS):
            listing = client.get(
                "/api/v1/requests",
                params={"limit": 20, "category": "financing"},
                headers=world.coordinator_headers,
            )
            results.append(("list", listing.status_code, None))
            one = client.get(
                f"/api/v1/enterprises/{world.enterprise_id}", headers=world.coordinator_headers
            )
            results.append(("get", one.status_code, None))
            created = client.post(
                "/api/v1/requests",
                headers=world.enterprise_headers,
                json={
                    "category": "financing",
                    "title": f"负载测试诉求 {index}-{round_}",
                    "description": "回款慢，需要短期周转",
                    "urgency": 3,
                },
            )
            new_id = created.json().get("id") if created.status_code == 201 else None
            results.append(("create", created.status_code, new_id))
    return results


def test_a_burst_larger_than_pool_and_threads_is_served_in_full(world: World) -> None:
    app = _app(world, db_pool_size=3, request_threads=6, admission_timeout=120)
    health: list[int] = []
    with serve(app) as base_url, ThreadPoolExecutor(max_workers=BURST_CLIENTS) as pool:
        futures = [pool.submit(_client_session, base_url, world, i) for i in range(BURST_CLIENTS)]
        # A wedged server never answers; a busy one (tests in parallel) may take seconds.
        with httpx.Client(base_url=base_url, timeout=30) as probe:
            while not all(f.done() for f in futures):
                health.append(probe.get("/healthz").status_code)
        wait(futures)
        results = [r for f in futures for r in f.result()]

    assert health, "the burst finished before /healthz was asked once"
    assert set(health) == {200}
    statuses = Counter((kind, status) for kind, status, _ in results)
    assert statuses == Counter(
        {
            ("list", 200): BURST_CLIENTS * ROUNDS,
            ("get", 200): BURST_CLIENTS * ROUNDS,
            ("create", 201): BURST_CLIENTS * ROUNDS,
        }
    )
    created = {new_id for kind, _, new_id in results if kind == "create"}
    engine = make_engine(world.database_url)
    with Session(engine) as session:
        stored = session.scalar(
            select(func.count()).select_from(HelpRequest).where(HelpRequest.id.in_(created))
        )
    engine.dispose()
    assert stored == BURST_CLIENTS * ROUNDS


@contextmanager
def _write_lock_held(database_url: str) -> Iterator[Connection]:
    """Another client holds the lock a request needs: SQLite's write lock, or a PostgreSQL
    table lock on the requests table."""
    engine: Engine = make_engine(database_url)
    connection = engine.connect()
    try:
        if database_url.startswith("sqlite"):
            connection.execute(text("SELECT 1"))  # the recipe begins it IMMEDIATE: write lock
        else:
            connection.execute(text("LOCK TABLE help_requests IN ACCESS EXCLUSIVE MODE"))
        yield connection
    finally:
        connection.rollback()
        connection.close()
        engine.dispose()


def _create_body() -> dict[str, Any]:
    return {"category": "financing", "title": "锁等待测试", "urgency": 2}


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["status"] == 503


def test_a_held_lock_answers_503_with_retry_after_not_a_hang(world: World) -> None:
    app = _app(world, db_statement_timeout_ms=300)
    with serve(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        with _write_lock_held(world.database_url):
            response = client.post(
                "/api/v1/requests", headers=world.enterprise_headers, json=_create_body()
            )
            health = client.get("/healthz")
        after = client.post(
            "/api/v1/requests", headers=world.enterprise_headers, json=_create_body()
        )
    _assert_unavailable(response)
    assert health.status_code == 200
    assert after.status_code == 201


def test_an_exhausted_pool_answers_503_with_retry_after(world: World) -> None:
    app = _app(world, db_pool_size=1, db_pool_timeout=0.2)
    with serve(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        engine: Engine = app.state.engine
        held = [engine.connect() for _ in range(2)]  # pool_size 1 + overflow 1: all of it
        try:
            response = client.get(
                f"/api/v1/enterprises/{world.enterprise_id}", headers=world.coordinator_headers
            )
        finally:
            for connection in held:
                connection.close()
        after = client.get(
            f"/api/v1/enterprises/{world.enterprise_id}", headers=world.coordinator_headers
        )
    _assert_unavailable(response)
    assert after.status_code == 200


def test_a_full_admission_queue_answers_503_and_healthz_still_answers(world: World) -> None:
    app = _app(world, db_pool_size=1, admission_timeout=0.3, db_statement_timeout_ms=60_000)
    with serve(app) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        with ThreadPoolExecutor(max_workers=1) as pool, _write_lock_held(world.database_url):
            # The only admission slot goes to a write that waits for the held lock (released
            # before the pool is joined: exits run in reverse order).
            blocked = pool.submit(
                client.post,
                "/api/v1/requests",
                headers=world.enterprise_headers,
                json=_create_body(),
            )
            admitted = threading.Event()
            while not admitted.is_set():
                admitted.wait(0.01)
                if app.state.admission.inflight == 1:
                    admitted.set()
            queued = httpx.get(
                f"{base_url}/api/v1/enterprises/{world.enterprise_id}",
                headers=world.coordinator_headers,
                timeout=30,
            )
            health = httpx.get(f"{base_url}/healthz", timeout=5)
        first = blocked.result()
    _assert_unavailable(queued)
    assert health.status_code == 200
    assert first.status_code == 201


def test_readyz_reads_the_schema_revision(world: World) -> None:
    app = _app(world)
    with serve(app) as base_url:
        response = httpx.get(f"{base_url}/readyz", timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert response.json()["schema_revision"]
