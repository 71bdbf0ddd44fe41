"""The notification outbox backs off after a failed attempt and dead-letters after a bounded
number of them; a slow batch renews its lease so a rival worker does not send its notices
again. No sleeping: each delivery is run at a chosen ``now`` (the stored ``next_attempt_at``
or just before it), or on a clock the gateway moves as it "takes its time"."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from app.common.backoff import backoff
from app.common.clock import utc_now
from app.models import Notification, NotificationStatus
from app.supervision import senders
from app.supervision.senders import MAX_ATTEMPTS, deliver_pending, lease_for
from tests.factories import sessions_of_test

TICK = timedelta(microseconds=1)


class GatewayDown(Exception):
    pass


@dataclass
class Gateway:
    """An SMS gateway that fails while ``down`` and counts every call."""

    down: bool = True
    calls: int = 0
    sent: list[str] = field(default_factory=list)

    def send(self, notification: Notification) -> None:
        self.calls += 1
        if self.down:
            raise GatewayDown("gateway unreachable")
        self.sent.append(notification.dedupe_key)


def pending_notice(session: Session, key: str) -> int:
    notice = Notification(
        channel="sms", kind="test", subject="s", body="b", dedupe_key=key, created_at=utc_now()
    )
    session.add(notice)
    session.flush()
    return notice.id


def row_of(db: Session, notice_id: int) -> Notification:
    row = db.get(Notification, notice_id, populate_existing=True)
    assert row is not None
    return row


def due_at(db: Session, notice_id: int) -> datetime:
    when = row_of(db, notice_id).next_attempt_at
    assert when is not None
    return when


class TestBackOff:
    def test_a_failed_notice_waits_out_its_back_off_then_goes(self, db: Session) -> None:
        notice_id = pending_notice(db, "retry:waits")
        sessions, now, gateway = sessions_of_test(db), utc_now(), Gateway()
        assert deliver_pending(sessions, {"sms": gateway}, now=now) == (0, 1)
        wait = due_at(db, notice_id) - now
        assert backoff(1, lambda: 0.0) <= wait <= backoff(1, lambda: 1.0)
        gateway.down = False
        assert deliver_pending(sessions, {"sms": gateway}, now=now) == (0, 0)
        assert deliver_pending(sessions, {"sms": gateway}, now=now + wait - TICK) == (0, 0)
        assert gateway.calls == 1  # not tried again before its time
        assert deliver_pending(sessions, {"sms": gateway}, now=now + wait) == (1, 0)
        row = row_of(db, notice_id)
        assert (row.status, row.attempts, row.next_attempt_at) == ("sent", 2, None)
        assert gateway.sent == ["retry:waits"]

    def test_the_wait_grows_with_each_failure(self, db: Session) -> None:
        notice_id = pending_notice(db, "retry:grows")
        sessions, now, gateway = sessions_of_test(db), utc_now(), Gateway()
        waits = []
        for attempt in range(1, 5):
            assert deliver_pending(sessions, {"sms": gateway}, now=now) == (0, 1)
            when = due_at(db, notice_id)
            waits.append(when - now)
            assert backoff(attempt, lambda: 0.0) <= when - now <= backoff(attempt, lambda: 1.0)
            now = when
        # full jitter spans half to all of a ceiling that doubles: each wait's lowest bound
        # is the previous one's highest
        assert all(b >= a for a, b in itertools.pairwise(waits))

    def test_other_notices_are_not_held_up_by_a_failing_one(self, db: Session) -> None:
        failing, fine = pending_notice(db, "retry:a"), pending_notice(db, "retry:b")
        sessions, now = sessions_of_test(db), utc_now()

        class Picky(Gateway):
            def send(self, notification: Notification) -> None:
                self.down = notification.id == failing
                super().send(notification)

        gateway = Picky()
        assert deliver_pending(sessions, {"sms": gateway}, now=now) == (1, 1)
        assert deliver_pending(sessions, {"sms": gateway}, now=now) == (0, 0)
        assert gateway.sent == ["retry:b"]
        assert row_of(db, fine).status == NotificationStatus.SENT
        assert row_of(db, failing).status == NotificationStatus.PENDING


class TestDeadLetter:
    def test_dead_lettered_after_the_last_try_and_never_tried_again(self, db: Session) -> None:
        notice_id = pending_notice(db, "retry:dead")
        sessions, now, gateway = sessions_of_test(db), utc_now(), Gateway()
        for _ in range(MAX_ATTEMPTS):
            assert deliver_pending(sessions, {"sms": gateway}, now=now) == (0, 1)
            row = row_of(db, notice_id)
            if row.status == NotificationStatus.FAILED:
                break
            now = due_at(db, notice_id)
        row = row_of(db, notice_id)
        assert (row.status, row.attempts) == (NotificationStatus.FAILED, MAX_ATTEMPTS)
        assert row.last_error == "gateway unreachable"
        assert row.next_attempt_at is None
        gateway.down = False
        assert deliver_pending(sessions, {"sms": gateway}, now=now + timedelta(days=30)) == (0, 0)
        assert gateway.calls == MAX_ATTEMPTS

    def test_the_retries_span_hours_not_minutes(self) -> None:
        """A relay down for an hour must not cost the notice: the last try comes at least
        two hours after the first (the shortest jitter on every wait)."""
        shortest = sum((backoff(a, lambda: 0.0) for a in range(1, MAX_ATTEMPTS)), timedelta())
        assert shortest >= timedelta(hours=2)


@dataclass
class SlowGateway:
    """Each send moves the shared clock on by ``step`` (a relay answering slowly), and lets a
    rival worker run its own delivery in the middle of it."""

    clock: list[datetime]
    step: timedelta
    timeout: float = 30.0  # what the lease budgets a send (SMTP's default)
    sent: list[str] = field(default_factory=list)
    rival: Callable[[], None] | None = None

    def send(self, notification: Notification) -> None:
        self.clock[0] += self.step
        if self.rival is not None:
            self.rival()
        self.sent.append(notification.dedupe_key)


class TestLeaseRenewal:
    def test_a_slow_batch_renews_its_lease_so_a_rival_sends_nothing(self, db: Session) -> None:
        ids = [pending_notice(db, f"slow:{i}") for i in range(3)]
        sessions, start = sessions_of_test(db), utc_now()
        clock = [start]
        slow = SlowGateway(clock, step=timedelta(seconds=100))
        rival = SlowGateway(clock, step=timedelta(0))
        tries: list[tuple[int, int]] = []
        slow.rival = lambda: tries.append(deliver_pending(sessions, {"sms": rival}, now=clock[0]))
        assert deliver_pending(sessions, {"sms": slow}, limit=3, clock=lambda: clock[0]) == (3, 0)
        assert clock[0] - start > lease_for({"sms": slow}, 3)  # outlasted its first lease
        assert (rival.sent, tries) == ([], [(0, 0)] * 3)
        assert slow.sent == ["slow:0", "slow:1", "slow:2"]
        for notice_id in ids:
            row = row_of(db, notice_id)
            assert (row.status, row.attempts, row.leased_until) == ("sent", 1, None)

    def test_a_batch_at_pace_never_renews(
        self, db: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for i in range(3):
            pending_notice(db, f"pace:{i}")
        renewals: list[int] = []

        def renew(*args: object) -> set[int]:
            renewals.append(1)
            return set()

        monkeypatch.setattr(senders, "_renew", renew)
        clock = [utc_now()]
        gateway = SlowGateway(clock, step=timedelta(seconds=5))
        sessions = sessions_of_test(db)
        assert deliver_pending(sessions, {"sms": gateway}, limit=3, clock=lambda: clock[0]) == (
            3,
            0,
        )
        assert renewals == []

    def test_what_a_rival_took_after_the_lease_ran_out_is_left_to_it(self, db: Session) -> None:
        """A send longer than the whole lease: the rival takes the batch over (the notice in
        flight goes twice, at-least-once); the slow worker sends no more of it and records
        nothing over the rival's claim."""
        ids = [pending_notice(db, f"stuck:{i}") for i in range(3)]
        sessions, start = sessions_of_test(db), utc_now()
        clock = [start]
        slow = SlowGateway(clock, step=timedelta(hours=1))
        rival = SlowGateway(clock, step=timedelta(0))

        def rival_once() -> None:
            slow.rival, slow.step = None, timedelta(0)
            assert deliver_pending(sessions, {"sms": rival}, now=clock[0]) == (3, 0)

        slow.rival = rival_once
        assert deliver_pending(sessions, {"sms": slow}, limit=3, clock=lambda: clock[0]) == (0, 0)
        assert slow.sent == ["stuck:0"]
        assert rival.sent == ["stuck:0", "stuck:1", "stuck:2"]
        for notice_id in ids:
            row = row_of(db, notice_id)
            assert (row.status, row.attempts) == ("sent", 2)
