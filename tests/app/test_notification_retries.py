"""The notification outbox backs off after a failed attempt and dead-letters after a bounded
number of them. No sleeping: each delivery is run at a chosen ``now``, the stored
``next_attempt_at`` or just before it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.common.backoff import backoff
from app.common.clock import utc_now
from app.models import Notification, NotificationStatus
from app.supervision.senders import MAX_ATTEMPTS, deliver_pending
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
