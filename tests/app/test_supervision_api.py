"""Deadlines (the 13710 clocks), expiry and re-match, reminders and escalation, the outbox."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common import clock
from app.common.clock import local_zone, today, utc_now
from app.common.pagination import PageParams
from app.common.principal import Principal
from app.common.workdays import add_working_days
from app.match_runs.claims import Sessions
from app.models import (
    Assignment,
    AssignmentOrigin,
    AssignmentStatus,
    Category,
    HelpRequest,
    Notification,
    NotificationStatus,
    RequestStatus,
    Role,
    User,
)
from app.supervision import batches, pages
from app.supervision import service as supervision_service
from app.supervision.senders import LogSender, deliver_pending
from app.worker.loop import Worker
from tests.app.conftest import Cast
from tests.app.test_holiday_file import first_unknown_year
from tests.factories import fetch, make_request, make_user, rematch_declined, sessions_of_test


def working_days_ago(days: float) -> datetime:
    """Now, moved back ``days`` working days (whole part) and then hours (fraction).

    Clocks count working days, so backdating by calendar days would make a test's outcome
    depend on the weekday (or holiday) it runs on. A fraction on top of whole days is refused:
    whether it crosses into the working day before depends on the hour the test runs (1.5 at
    Monday noon lands on Friday, at Monday 10:00 on Thursday), which once failed CI.
    """
    if days >= 1 and days != int(days):
        raise ValueError(f"backdate by whole working days or by less than one day, not {days}")
    now = utc_now().astimezone(local_zone())
    whole = int(days)
    day = add_working_days(now.date(), -whole)
    moment = datetime.combine(day, now.timetz()) - timedelta(days=days - whole)
    return moment.astimezone(utc_now().tzinfo)


def backdated_request(db: Session, cast: Cast, days: float, **overrides: object) -> HelpRequest:
    """A request filed ``days`` working days ago."""
    request = make_request(db, cast.ent, status="triaged", **overrides)
    request.created_at = working_days_ago(days)
    db.flush()
    return request


def offered(db: Session, request: HelpRequest, provider_id: int, days_ago: float) -> Assignment:
    start = utc_now() - timedelta(days=days_ago)
    assignment = Assignment(
        request_id=request.id,
        provider_id=provider_id,
        origin=AssignmentOrigin.MANUAL,
        status=AssignmentStatus.OFFERED,
        offered_at=start,
        offer_expires_at=start + timedelta(days=2),
    )
    db.add(assignment)
    request.status = RequestStatus.MATCHED
    db.flush()
    return assignment


class TestBoard:
    def test_unrouted_request_shows_for_its_coordinators_only(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        late = backdated_request(db, cast, days=3)
        backdated_request(db, cast, days=0.1)
        db.commit()
        board = client.get("/api/v1/supervision", headers=cast.headers(cast.coordinator)).json()
        unrouted = [o for o in board["overdue_requests"]["items"] if o["kind"] == "unrouted"]
        assert [o["request_id"] for o in unrouted] == [late.id]
        assert unrouted[0]["level"] == 2  # 2 days late on a 1-day clock
        assert board["ageing"]["<1d"] == 1
        assert board["ageing"]["1-3d"] + board["ageing"]["3-7d"] == 1
        other = client.get(
            "/api/v1/supervision", headers=cast.headers(cast.other_coordinator)
        ).json()
        assert other["overdue_requests"]["items"] == []

    @pytest.mark.parametrize(
        ("role", "status"), [("enterprise", 403), ("expert", 403), ("admin", 200)]
    )
    def test_who_reads_it(self, client: TestClient, cast: Cast, role: str, status: int) -> None:
        assert (
            client.get(
                "/api/v1/supervision", headers=cast.headers(cast.by_role()[role])
            ).status_code
            == status
        )

    def test_region_outside_scope_is_403(self, client: TestClient, cast: Cast) -> None:
        r = client.get(
            "/api/v1/supervision", params={"region": "41"}, headers=cast.headers(cast.coordinator)
        )
        assert r.status_code == 403

    def test_major_problems_get_thirty_days(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        ordinary = backdated_request(db, cast, days=10, severity="ordinary")
        major = backdated_request(db, cast, days=10, severity="major")
        db.commit()
        board = client.get("/api/v1/supervision", headers=cast.headers(cast.admin)).json()
        unresolved = {
            o["request_id"] for o in board["overdue_requests"]["items"] if o["kind"] == "unresolved"
        }
        assert ordinary.id in unresolved
        assert major.id not in unresolved


class TestSweep:
    def test_expired_offer_goes_to_the_next_best_provider(self, db: Session, cast: Cast) -> None:
        request = make_request(db, cast.ent, status="matched")
        old = offered(db, request, cast.expert.id, days_ago=3)
        report = supervision_service.sweep(db)
        assert report.expired_offers == 1
        assert report.rematched_offers == 1
        db.refresh(old)
        assert old.status == AssignmentStatus.EXPIRED
        new = db.scalars(
            select(Assignment).where(
                Assignment.request_id == request.id, Assignment.status == AssignmentStatus.OFFERED
            )
        ).one()
        assert new.provider_id == cast.platform.id
        recipients = set(
            db.scalars(
                select(Notification.recipient_user_id).where(Notification.kind == "overdue.offer")
            )
        )
        assert recipients == {cast.expert_user.id, cast.coordinator.id}

    def test_sweeping_twice_announces_once(self, db: Session, cast: Cast) -> None:
        backdated_request(db, cast, days=3)
        first = supervision_service.sweep(db)
        second = supervision_service.sweep(db)
        assert first.notifications > 0
        assert second.notifications == 0

    def test_escalation_reaches_the_enclosing_region(self, db: Session, cast: Cast) -> None:
        county = make_user(db, Role.COORDINATOR, region_prefixes=["350582"])
        slightly_late = backdated_request(db, cast, days=2)  # level 1 on the 1-day routing clock
        very_late = backdated_request(db, cast, days=3)  # level 2
        supervision_service.sweep(db)

        def recipients(request: HelpRequest) -> set[int | None]:
            rows = db.scalars(select(Notification).where(Notification.kind == "overdue.unrouted"))
            return {n.recipient_user_id for n in rows if n.payload["request_id"] == request.id}

        assert recipients(slightly_late) == {county.id}
        assert recipients(very_late) == {cast.coordinator.id}

    def test_accepted_without_follow_up_is_overdue(self, db: Session, cast: Cast) -> None:
        request = make_request(db, cast.ent, status="in_progress")
        assignment = offered(db, request, cast.expert.id, days_ago=6)
        assignment.status = AssignmentStatus.ACCEPTED
        assignment.responded_at = working_days_ago(5)
        db.flush()
        report = supervision_service.sweep(db)
        assert report.overdue.get("first_follow_up") == 1

    def test_outbox_delivery_marks_sent_and_keeps_failures_pending(
        self, db: Session, cast: Cast
    ) -> None:
        backdated_request(db, cast, days=3)
        supervision_service.sweep(db)

        class Broken:
            def send(self, notification: Notification) -> None:
                raise ConnectionError("SMS gateway down")

        sent, failed = deliver_pending(sessions_of_test(db), {"log": Broken()})
        assert sent == 0
        assert failed > 0
        pending = db.scalars(select(Notification)).all()
        assert all(n.status == NotificationStatus.PENDING and n.attempts == 1 for n in pending)
        assert deliver_pending(sessions_of_test(db), {"log": LogSender()}) == (0, 0)  # backing off
        later = max(n.next_attempt_at for n in pending if n.next_attempt_at is not None)
        sent, failed = deliver_pending(sessions_of_test(db), {"log": LogSender()}, now=later)
        assert (sent, failed) == (len(pending), 0)
        assert all(n.status == NotificationStatus.SENT for n in db.scalars(select(Notification)))

    def test_sweep_endpoint_is_admin_only(self, client: TestClient, cast: Cast) -> None:
        assert (
            client.post(
                "/api/v1/supervision/sweep", headers=cast.headers(cast.coordinator)
            ).status_code
            == 403
        )
        r = client.post("/api/v1/supervision/sweep", headers=cast.headers(cast.admin))
        assert r.status_code == 200
        assert r.json()["expired_offers"] == 0


def test_pausing_a_provider_hands_its_offers_on(
    client: TestClient, cast: Cast, db: Session
) -> None:
    request = make_request(db, cast.ent, status="matched")
    old = offered(db, request, cast.expert.id, days_ago=0)
    db.commit()
    r = client.patch(
        f"/api/v1/providers/{cast.expert.id}",
        json={"paused_from_date": today().isoformat()},
        headers=cast.headers(cast.expert_user) | {"If-Match": "*"},
    )
    assert r.status_code == 200, r.text
    db.expire_all()
    assert fetch(db, Assignment, old.id).status == AssignmentStatus.WITHDRAWN
    assert rematch_declined(db) == 1  # handed on by the worker's re-match
    new = db.scalars(
        select(Assignment).where(
            Assignment.request_id == request.id, Assignment.status == AssignmentStatus.OFFERED
        )
    ).one()
    assert new.provider_id == cast.platform.id


def test_notifications_are_scoped(client: TestClient, cast: Cast, db: Session) -> None:
    backdated_request(db, cast, days=3)
    supervision_service.sweep(db)
    db.commit()

    def items(user: User) -> list[dict[str, object]]:
        response = client.get("/api/v1/notifications", headers=cast.headers(user))
        found: list[dict[str, object]] = response.json()["items"]
        return found

    assert items(cast.coordinator)
    assert items(cast.other_coordinator) == []
    assert items(cast.ent_user) == []


def test_worker_housekeeping_sweeps_and_delivers(db: Session, cast: Cast) -> None:
    request = make_request(db, cast.ent, status="matched")
    offered(db, request, cast.expert.id, days_ago=3)

    sessions = sessions_of_test(db)
    worker = Worker(Sessions(write=sessions, read=sessions), worker_id="test")
    report = worker.housekeeping()
    assert report.expired_offers == 1
    assert report.notifications >= 2
    assert all(n.status == NotificationStatus.SENT for n in db.scalars(select(Notification)))


@pytest.mark.usefixtures("packaged_calendar_only")
def test_the_worker_warns_daily_before_the_holiday_calendar_runs_out(
    db: Session, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    year = first_unknown_year()
    # 10:00 in Beijing, 32 days before the first day the packaged calendar does not know
    monkeypatch.setattr(clock, "utc_now", lambda: datetime(year - 1, 11, 30, 2, tzinfo=UTC))
    sessions = sessions_of_test(db)
    worker = Worker(Sessions(write=sessions, read=sessions), worker_id="test")
    with caplog.at_level(logging.WARNING, logger="app.worker.loop"):
        worker.housekeeping()
        worker.housekeeping()  # the same day: said once
        monkeypatch.setattr(clock, "utc_now", lambda: datetime(year - 1, 12, 1, 2, tzinfo=UTC))
        worker.housekeeping()
    told = [r.getMessage() for r in caplog.records if "holiday calendar" in r.getMessage()]
    assert len(told) == 2
    assert "in 32 days" in told[0]
    assert "in 31 days" in told[1]


class TestBatches:
    """The worker's sweep and outbox commit in bounded batches, reporting progress."""

    def test_late_offers_are_expired_a_batch_per_transaction(
        self, db: Session, cast: Cast, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        late = [offered(db, make_request(db, cast.ent), cast.expert.id, 3) for _ in range(5)]
        db.commit()
        opened, commits, progress = 0, 0, []
        real_commit = db.commit

        def counted_commit() -> None:
            nonlocal commits
            commits += 1
            real_commit()

        def open_session() -> Session:
            nonlocal opened
            opened += 1
            db.commit()
            return db

        monkeypatch.setattr(db, "commit", counted_commit)
        report = batches.sweep(open_session, batch=2, progress=lambda *p: progress.append(p))
        assert report.expired_offers == len(late)
        assert [p for p in progress if p[0] == "offers"] == [
            ("offers", 2),
            ("offers", 4),
            ("offers", 5),
        ]
        db.expire_all()
        assert {fetch(db, Assignment, a.id).status for a in late} == {AssignmentStatus.EXPIRED}
        assert opened >= 4  # one count, then one transaction per batch of two (and the rest)

    def test_the_outbox_drains_past_one_batch(self, db: Session, cast: Cast) -> None:
        for i in range(7):
            db.add(
                Notification(
                    recipient_user_id=cast.coordinator.id,
                    channel="log",
                    kind="test",
                    subject=f"n{i}",
                    body="",
                    payload={},
                    region_code="350582",
                    dedupe_key=f"drain-test-{i}",
                    created_at=utc_now(),
                )
            )
        db.commit()
        sent, failed = batches.drain_outbox(sessions_of_test(db), batch=3)
        assert (sent, failed) == (7, 0)
        pending = select(Notification).where(Notification.status == NotificationStatus.PENDING)
        assert db.scalars(pending).all() == []


def walk_overdue(client: TestClient, which: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every item of one overdue list, one per page, checking the total on each page."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1}
    totals = set()
    for _ in range(50):
        page = client.get(f"/api/v1/supervision/overdue/{which}", params=params, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        totals.add(body["total"])
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert totals == {len(items)}
    return items


class TestOverdueLists:
    """Each list is a SQL filter paged by key, with its total."""

    def test_a_request_late_on_both_clocks_is_listed_twice_and_paged_once_each(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        both = [backdated_request(db, cast, days=10) for _ in range(2)]  # 1- and 7-day clocks
        unrouted_only = backdated_request(db, cast, days=3)
        backdated_request(db, cast, days=0.1)  # on time
        db.commit()
        items = walk_overdue(client, "requests", cast.headers(cast.coordinator))
        assert [(i["request_id"], i["kind"]) for i in items] == [
            (both[0].id, "unrouted"),
            (both[0].id, "unresolved"),
            (both[1].id, "unrouted"),
            (both[1].id, "unresolved"),
            (unrouted_only.id, "unrouted"),
        ]

    def test_first_follow_ups_are_paged(self, client: TestClient, cast: Cast, db: Session) -> None:
        late = []
        for _ in range(3):
            request = make_request(db, cast.ent, status="in_progress")
            assignment = offered(db, request, cast.expert.id, days_ago=8)
            assignment.status = AssignmentStatus.ACCEPTED
            assignment.responded_at = working_days_ago(5)
            late.append(assignment.id)
        db.commit()
        items = walk_overdue(client, "follow-ups", cast.headers(cast.admin))
        assert [i["assignment_id"] for i in items] == late
        assert {i["kind"] for i in items} == {"first_follow_up"}

    def test_a_category_clock_changed_by_an_admin_applies_at_once(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        request = backdated_request(db, cast, days=3)
        db.commit()
        headers = cast.headers(cast.admin)
        assert [i["request_id"] for i in walk_overdue(client, "requests", headers)] == [request.id]
        category = db.get(Category, request.category)
        assert category is not None
        category.route_days = 5
        db.commit()
        assert walk_overdue(client, "requests", headers) == []


def test_the_sweep_endpoint_commits_in_batches_and_says_so(
    client: TestClient, cast: Cast, db: Session
) -> None:
    late = [offered(db, make_request(db, cast.ent), cast.expert.id, 3) for _ in range(3)]
    backdated_request(db, cast, days=3)
    db.commit()
    r = client.post("/api/v1/supervision/sweep", headers=cast.headers(cast.admin))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["expired_offers"] == len(late)
    assert body["overdue"]["unrouted"] == 1
    assert body["transactions"] >= 5  # offers, releases, follow-ups, requests, key purge
    assert 0 <= body["longest_transaction_seconds"] <= body["seconds"]
    db.expire_all()
    assert {fetch(db, Assignment, a.id).status for a in late} == {AssignmentStatus.EXPIRED}


def test_board_totals_are_reused_for_the_cache_ttl_while_pages_stay_live(
    db: Session, cast: Cast
) -> None:
    cache = pages.BoardCache(ttl=60)
    first = backdated_request(db, cast, days=3)
    listed = partial(
        pages.overdue,
        db,
        principal=Principal.of(cast.admin),
        region=None,
        which=pages.OverdueList.REQUESTS,
        page=PageParams(limit=10, after_id=None),
        cache=cache,
    )
    assert listed().total == 1
    second = backdated_request(db, cast, days=3)
    again = listed()
    assert [i.request_id for i in again.items] == [first.id, second.id]
    assert again.total == 1  # counted once per TTL and scope
    cache.clear()
    assert listed().total == 2
