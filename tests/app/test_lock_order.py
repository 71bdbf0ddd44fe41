"""Lock order, transaction retry and clean 500s, against a real server.

The known deadlock: withdraw took request → assignment while accept took assignment →
request; on PostgreSQL 63 of 90 such races answered 500. Both now lock in the global order
of ``app.common.locking``; what still deadlocks is retried, and a 500 never drops a
keep-alive connection.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from threading import Barrier
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db import make_engine
from app.main import create_app
from app.models import Assignment, AssignmentOrigin, AssignmentStatus, Role
from tests.conftest import TEST_SECRET
from tests.factories import auth_headers, make_enterprise, make_provider, make_request, make_user
from tests.live import BACKENDS, own_database, serve, settings_for

PAIRS = 12


@dataclass
class Live:
    base_url: str
    database_url: str
    app: FastAPI


class _Deadlock(Exception):
    sqlstate = "40P01"


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with own_database(request.param, tmp_path_factory.mktemp("locks")) as url:
        app = create_app(settings_for(url))
        _add_failing_routes(app)
        with serve(app) as base_url:
            yield Live(base_url, url, app)


def _add_failing_routes(app: FastAPI) -> None:
    """Test-only routes: one that deadlocks twice before it succeeds, one that crashes."""
    calls: Counter[str] = Counter()
    app.state.test_calls = calls

    @app.post("/test/deadlock-twice")
    def deadlock_twice(body: dict[str, Any]) -> dict[str, Any]:
        calls["deadlock"] += 1
        if calls["deadlock"] <= 2:
            raise OperationalError("UPDATE ...", {}, _Deadlock("deadlock detected"))
        return {"attempts": calls["deadlock"], "echo": body}

    @app.post("/test/always-deadlocks")
    def always_deadlocks() -> None:
        raise OperationalError("UPDATE ...", {}, _Deadlock("deadlock detected"))

    @app.get("/test/crash")
    def crash() -> None:
        raise RuntimeError("a bug")


def _offers(live: Live, count: int) -> tuple[list[tuple[int, int]], dict[str, str], dict[str, str]]:
    """``count`` committed offers (request id, assignment id) to one provider, with the
    provider's and the enterprise's headers."""
    engine = make_engine(live.database_url)
    with Session(engine) as session, session.begin():
        enterprise = make_enterprise(session)
        provider = make_provider(session, capacity=count + 5)
        pairs = []
        for _ in range(count):
            request = make_request(session, enterprise, status="matched")
            assignment = Assignment(
                request_id=request.id,
                provider_id=provider.id,
                origin=AssignmentOrigin.MANUAL,
                status=AssignmentStatus.OFFERED,
            )
            session.add(assignment)
            session.flush()
            pairs.append((request.id, assignment.id))
        expert = make_user(session, Role.EXPERT, provider_id=provider.id)
        owner = make_user(session, Role.ENTERPRISE, enterprise_id=enterprise.id)
        session.flush()
        headers = auth_headers(expert, TEST_SECRET), auth_headers(owner, TEST_SECRET)
    engine.dispose()
    return pairs, *headers


def _race(live: Live, calls: list[tuple[str, dict[str, str], dict[str, Any] | None]]) -> list[int]:
    """Fire the calls at once (a barrier lines them up), each on its own connection."""
    barrier = Barrier(len(calls))

    def fire(call: tuple[str, dict[str, str], dict[str, Any] | None]) -> int:
        path, headers, body = call
        with httpx.Client(base_url=live.base_url, timeout=120) as client:
            barrier.wait()
            return client.post(path, headers=headers, json=body).status_code

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(fire, calls))


@pytest.mark.parametrize("answer", ["accept", "decline"])
def test_withdraw_against_an_answer_never_500(live: Live, answer: str) -> None:
    pairs, expert, owner = _offers(live, PAIRS)
    body = {"reason_code": "unavailable"} if answer == "decline" else None
    calls: list[tuple[str, dict[str, str], dict[str, Any] | None]] = []
    for request_id, assignment_id in pairs:
        calls.append((f"/api/v1/requests/{request_id}/withdraw", owner, None))
        calls.append((f"/api/v1/assignments/{assignment_id}/{answer}", expert, body))
    statuses = Counter(_race(live, calls))
    assert set(statuses) <= {200, 409}, statuses
    assert statuses[200] >= PAIRS  # every withdraw wins or comes after its answer


def test_a_deadlocked_request_is_run_again(live: Live) -> None:
    # Generous read timeout: the retries back off, and a busy CI machine is slow (a liveness
    # bound, not a timing assertion).
    with httpx.Client(base_url=live.base_url, timeout=60) as client:
        response = client.post("/test/deadlock-twice", json={"n": 1})
    assert response.status_code == 200
    assert response.json() == {"attempts": 3, "echo": {"n": 1}}
    assert "x-zhuqi-retry-transaction" not in response.headers


def test_a_persistent_deadlock_is_503_with_retry_after(live: Live) -> None:
    with httpx.Client(base_url=live.base_url, timeout=60) as client:
        response = client.post("/test/always-deadlocks")
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.headers["content-type"] == "application/problem+json"
    assert "x-zhuqi-retry-transaction" not in response.headers


def test_a_500_keeps_the_keep_alive_connection(live: Live) -> None:
    host, port = live.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        reader = sock.makefile("rb")
        answers = []
        for path in ("/test/crash", "/healthz"):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
            status_line = reader.readline().decode()
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            reader.read(length)
            answers.append(status_line.split()[1])
    assert answers == ["500", "200"]


def test_racing_edits_with_one_version_give_one_200_and_412s(live: Live) -> None:
    """Losers of an If-Match race always get 412 (a stale version), never 409."""
    engine = make_engine(live.database_url)
    with Session(engine) as session, session.begin():
        enterprise = make_enterprise(session)
        admin = make_user(session, Role.ADMIN)
        session.flush()
        url = f"/api/v1/enterprises/{enterprise.id}"
        headers = auth_headers(admin, TEST_SECRET) | {"If-Match": f'"{enterprise.version}"'}
    engine.dispose()
    barrier = Barrier(PAIRS)

    def edit(n: int) -> int:
        with httpx.Client(base_url=live.base_url, timeout=120) as client:
            barrier.wait()
            return client.patch(url, json={"headcount": 200 + n}, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=PAIRS) as pool:
        statuses = Counter(pool.map(edit, range(PAIRS)))
    assert statuses == Counter({200: 1, 412: PAIRS - 1})
