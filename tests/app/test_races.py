"""Real concurrency against a real server: many clients click at once, exactly one wins.

These tests need committed data and separate connections, so they run a uvicorn server on a
fresh database of each backend (not the rolled-back per-test transaction).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from threading import Barrier

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.db import make_engine
from app.main import create_app
from app.models import (
    Assignment,
    AssignmentOrigin,
    AssignmentStatus,
    Event,
    Exclusion,
    Milestone,
    Plan,
    PlanStatus,
    Role,
)
from tests.conftest import TEST_SECRET
from tests.factories import auth_headers, make_enterprise, make_provider, make_request, make_user
from tests.live import BACKENDS, own_database, serve, settings_for

CLICKS = 20


@dataclass
class Live:
    base_url: str
    database_url: str


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """A uvicorn server on its own thread, on a database of its own."""
    with (
        own_database(request.param, tmp_path_factory.mktemp("races")) as url,
        serve(create_app(settings_for(url))) as base_url,
    ):
        yield Live(base_url=base_url, database_url=url)


def _offer(live: Live) -> tuple[int, dict[str, str], dict[str, str]]:
    """Commit an offer; return its id, the provider's headers and a coordinator's headers."""
    engine = make_engine(live.database_url)
    with Session(engine) as session, session.begin():
        enterprise = make_enterprise(session)
        provider = make_provider(session, capacity=50)
        request = make_request(session, enterprise, status="matched")
        assignment = Assignment(
            request_id=request.id,
            provider_id=provider.id,
            origin=AssignmentOrigin.MANUAL,
            status=AssignmentStatus.OFFERED,
        )
        session.add(assignment)
        user = make_user(session, Role.EXPERT, provider_id=provider.id)
        coordinator = make_user(session, Role.COORDINATOR, region_prefixes=["35"])
        session.flush()
        ids = assignment.id, auth_headers(user, TEST_SECRET), auth_headers(coordinator, TEST_SECRET)
    engine.dispose()
    return ids


def _hammer(
    live: Live, path: str, headers: dict[str, str], body: dict[str, object] | None = None
) -> Counter[int]:
    def click(_: int) -> int:
        with httpx.Client(base_url=live.base_url, timeout=60) as client:
            return client.post(path, headers=headers, json=body).status_code

    with ThreadPoolExecutor(max_workers=CLICKS) as pool:
        return Counter(pool.map(click, range(CLICKS)))


def test_concurrent_accepts_one_wins_the_rest_409(live: Live) -> None:
    assignment_id, provider_headers, _ = _offer(live)
    statuses = _hammer(live, f"/api/v1/assignments/{assignment_id}/accept", provider_headers)
    assert statuses == Counter({200: 1, 409: CLICKS - 1})


def test_concurrent_decline_and_accept_never_both(live: Live) -> None:
    assignment_id, provider_headers, _ = _offer(live)
    with (
        ThreadPoolExecutor(max_workers=2) as pool,
        httpx.Client(base_url=live.base_url, timeout=60) as client,
    ):
        accept = pool.submit(
            client.post, f"/api/v1/assignments/{assignment_id}/accept", headers=provider_headers
        )
        decline = pool.submit(
            client.post,
            f"/api/v1/assignments/{assignment_id}/decline",
            headers=provider_headers,
            json={"reason_code": "unavailable"},
        )
        codes = sorted([accept.result().status_code, decline.result().status_code])
    assert codes == [200, 409]


def test_concurrent_manual_offers_never_overfill_a_provider(live: Live) -> None:
    engine = make_engine(live.database_url)
    with Session(engine) as session, session.begin():
        enterprise = make_enterprise(session)
        provider = make_provider(session, capacity=3)
        requests = [make_request(session, enterprise, status="triaged") for _ in range(CLICKS)]
        coordinator = make_user(session, Role.COORDINATOR, region_prefixes=["35"])
        session.flush()
        provider_id, request_ids = provider.id, [r.id for r in requests]
        headers = auth_headers(coordinator, TEST_SECRET)

    def assign(request_id: int) -> int:
        with httpx.Client(base_url=live.base_url, timeout=60) as client:
            body = {"request_id": request_id, "provider_id": provider_id}
            return client.post("/api/v1/assignments", headers=headers, json=body).status_code

    with ThreadPoolExecutor(max_workers=CLICKS) as pool:
        statuses = Counter(pool.map(assign, request_ids))
    assert statuses == Counter({201: 3, 409: CLICKS - 3})
    with Session(engine) as session:
        open_count = session.scalar(
            select(func.count())
            .select_from(Assignment)
            .where(
                Assignment.provider_id == provider_id, Assignment.status == AssignmentStatus.OFFERED
            )
        )
    engine.dispose()
    assert open_count == 3


def test_concurrent_ticks_of_one_milestone_one_wins_the_rest_412(live: Live) -> None:
    engine = make_engine(live.database_url)
    with Session(engine) as session, session.begin():
        enterprise = make_enterprise(session)
        plan = Plan(enterprise_id=enterprise.id, status=PlanStatus.ACTIVE)
        session.add(plan)
        session.flush()
        milestone = Milestone(plan_id=plan.id, title="需求诊断", owner_role="coordinator")
        session.add(milestone)
        coordinator = make_user(session, Role.COORDINATOR, region_prefixes=["35"])
        session.flush()
        path = f"/api/v1/plans/{plan.id}/milestones/{milestone.id}/done"
        headers = auth_headers(coordinator, TEST_SECRET) | {"If-Match": 'W/"1"'}
    engine.dispose()
    assert _hammer(live, path, headers) == Counter({200: 1, 412: CLICKS - 1})


def test_sweep_against_declines_each_offer_ends_once(live: Live) -> None:
    """The sweep expires a batch of late offers set-based while their provider declines them
    one by one: each offer is declined (200) or expired (the decline's 409), never both, no
    500, and exactly one audit event and one exclusion per offer."""
    engine = make_engine(live.database_url)
    start = utc_now() - timedelta(days=4)
    with Session(engine) as session, session.begin():
        enterprise = make_enterprise(session)
        provider = make_provider(session, capacity=50)
        offers = []
        for _ in range(CLICKS // 2):
            request = make_request(session, enterprise, status="matched")
            offers.append(
                Assignment(
                    request_id=request.id,
                    provider_id=provider.id,
                    origin=AssignmentOrigin.MANUAL,
                    status=AssignmentStatus.OFFERED,
                    offered_at=start,
                    offer_expires_at=start + timedelta(days=2),
                )
            )
        session.add_all(offers)
        expert = make_user(session, Role.EXPERT, provider_id=provider.id)
        admin = make_user(session, Role.ADMIN)
        session.flush()
        ids, provider_id = [a.id for a in offers], provider.id
        expert_headers, admin_headers = (
            auth_headers(expert, TEST_SECRET),
            auth_headers(admin, TEST_SECRET),
        )
    calls = [("/api/v1/supervision/sweep", admin_headers, None)] + [
        (f"/api/v1/assignments/{i}/decline", expert_headers, {"reason_code": "unavailable"})
        for i in ids
    ]
    barrier = Barrier(len(calls))

    def fire(call: tuple[str, dict[str, str], dict[str, str] | None]) -> int:
        path, headers, body = call
        with httpx.Client(base_url=live.base_url, timeout=120) as client:
            barrier.wait()
            return client.post(path, headers=headers, json=body).status_code

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        sweep, *declines = pool.map(fire, calls)
    assert sweep == 200
    assert set(declines) <= {200, 409}, Counter(declines)
    with Session(engine) as session:
        status = dict(
            session.execute(
                select(Assignment.id, Assignment.status).where(Assignment.id.in_(ids))
            ).all()
        )
        moves = Counter(
            session.scalars(
                select(Event.entity_id).where(
                    Event.entity_type == "assignments",
                    Event.entity_id.in_(ids),
                    Event.action.in_(("assignment.expired", "assignment.declined")),
                )
            )
        )
        excluded = Counter(
            session.scalars(
                select(Exclusion.request_id).where(Exclusion.provider_id == provider_id)
            )
        )
    engine.dispose()
    for assignment_id, code in zip(ids, declines, strict=True):
        wanted = AssignmentStatus.DECLINED if code == 200 else AssignmentStatus.EXPIRED
        assert status[assignment_id] == wanted
        assert moves[assignment_id] == 1
    assert sorted(excluded.values()) == [1] * len(ids)
