"""Webhook deliveries and outbox notices are sent with no database transaction open, leased
so that a crashed sender's are sent again, and recorded compare-and-set so a late sender
changes nothing. Webhooks go to a real receiver on loopback that verifies every signature."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.db import make_engine
from app.migrate import upgrade
from app.models import (
    Notification,
    NotificationStatus,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookSubscription,
)
from app.settings import Settings
from app.supervision.senders import batch_for, deliver_pending
from app.supervision.senders import lease_for as outbox_lease_for
from app.webhooks.delivery import Answer, Outcome, claim, deliver_due, lease_for, record
from app.webhooks.service import new_secret
from tests.app.webhook_receiver import Receiver, loopback_settings
from tests.conftest import fresh_postgres_database, require_postgres
from tests.factories import sessions_of_test


@pytest.fixture
def settings() -> Settings:
    return loopback_settings()


def queue_one(session: Session, receiver: Receiver) -> int:
    """A subscription of the receiver with one delivery due now; returns the delivery's id."""
    receiver.secret = new_secret()
    subscription = WebhookSubscription(url=receiver.url, events=["*"], secret=receiver.secret)
    session.add(subscription)
    session.flush()
    now = utc_now()
    delivery = WebhookDelivery(
        subscription_id=subscription.id,
        event_type="match_run.created",
        message_id=f"msg_lease_{subscription.id}",
        payload={"type": "match_run.created", "data": {"event_id": 1}},
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    return delivery.id


class TestLeases:
    def test_a_crashed_senders_claim_expires_and_the_delivery_goes_out_once_more(
        self, db: Session, receiver: Receiver, settings: Settings
    ) -> None:
        delivery_id = queue_one(db, receiver)
        sessions, now = sessions_of_test(db), utc_now()
        lease = lease_for(settings)
        with sessions() as session, session.begin():
            [stale] = claim(session, now, lease=lease)  # ... and the sender dies here
        assert deliver_due(sessions, settings, now=now + lease / 2) == Outcome()  # still leased
        assert receiver.verified == []
        assert deliver_due(sessions, settings, now=now + lease).sent == 1
        assert receiver.rejected == 0
        assert len(receiver.verified) == 1
        # The crashed sender's answer, arriving late, is not its to record any more.
        with sessions() as session, session.begin():
            late = Answer(ok=False, status_code=500, error="HTTP 500", at=now + lease)
            assert record(session, stale, late, timedelta(hours=26)) is None
        db.expire_all()
        row = db.get(WebhookDelivery, delivery_id)
        assert row is not None
        assert (row.status, row.attempts, row.last_status_code) == ("sent", 2, 200)

    def test_two_senders_never_claim_the_same_delivery(
        self, db: Session, receiver: Receiver, settings: Settings
    ) -> None:
        queue_one(db, receiver)
        sessions, now = sessions_of_test(db), utc_now()
        with sessions() as session, session.begin():
            first = claim(session, now, lease=lease_for(settings))
        with sessions() as session, session.begin():
            second = claim(session, now, lease=lease_for(settings))
        assert len(first) == 1
        assert second == []

    def test_recording_twice_counts_once(
        self, db: Session, receiver: Receiver, settings: Settings
    ) -> None:
        queue_one(db, receiver)
        sessions, now = sessions_of_test(db), utc_now()
        with sessions() as session, session.begin():
            [item] = claim(session, now, lease=lease_for(settings))
        answer = Answer(ok=True, status_code=204, error="", at=now)
        with sessions() as session, session.begin():
            assert record(session, item, answer, timedelta(hours=26)) == "sent"
            assert record(session, item, answer, timedelta(hours=26)) is None


@pytest.fixture(params=["sqlite", "postgresql"])
def own_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A database of its own with real commits: the test's rolled-back transaction would hold
    SQLite's write lock itself."""
    drop: Callable[[], None] = lambda: None  # noqa: E731
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('leases') / 'leases.db'}"
    else:
        require_postgres()
        url, drop = fresh_postgres_database()
    engine = make_engine(url)
    try:
        upgrade(url=url)
        yield engine
    finally:
        engine.dispose()
        drop()


def probe_row(
    engine: Engine, model: type[WebhookDelivery] | type[Notification], row_id: int
) -> None:
    """Lock and write the row from another connection, failing at once if anyone holds a
    lock on it (PostgreSQL: ``FOR UPDATE NOWAIT``) or the write lock (SQLite: a write
    transaction with no busy timeout)."""
    with engine.connect() as probe:
        sqlite = engine.dialect.name == "sqlite"
        raw: Any = probe.connection.driver_connection
        if sqlite:  # on the driver's connection: no BEGIN before it; locked → fails at once
            raw.execute("PRAGMA busy_timeout = 0")
        try:
            with probe.begin():
                locked = select(model.id).where(model.id == row_id)
                if not sqlite:
                    locked = locked.with_for_update(nowait=True)
                assert probe.scalar(locked) == row_id
                probe.execute(update(model).where(model.id == row_id).values(last_error="probe"))
        except OperationalError as exc:
            pytest.fail(f"a lock was held while sending: {exc}")
        finally:
            if sqlite:  # back to the engine's setting for the pool's next user
                raw.execute("PRAGMA busy_timeout = 5000")


def test_no_lock_is_held_while_a_receiver_takes_its_time(
    own_engine: Engine, receiver: Receiver, settings: Settings
) -> None:
    """While the receiver holds the request, another connection locks and writes the very
    row being delivered without waiting (PostgreSQL: ``FOR UPDATE NOWAIT``; SQLite: a write
    transaction with no busy timeout) — so the sender holds no transaction."""

    def open_session() -> Session:
        return Session(own_engine, expire_on_commit=False)

    with open_session() as session, session.begin():
        delivery_id = queue_one(session, receiver)
    receiver.hold = True
    outcome: list[Outcome] = []
    sender = threading.Thread(target=lambda: outcome.append(deliver_due(open_session, settings)))
    sender.start()
    try:
        assert receiver.arrived.wait(60), "the delivery never reached the receiver"
        probe_row(own_engine, WebhookDelivery, delivery_id)
    finally:
        receiver.release.set()
        sender.join(60)
    assert outcome
    assert outcome[0].sent == 1
    assert receiver.rejected == 0
    assert len(receiver.verified) == 1
    with open_session() as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None
        assert (row.status, row.attempts) == (WebhookDeliveryStatus.SENT, 1)


class Crash(BaseException):
    """The worker dying mid-send (not an ``Exception``: nothing records it)."""


@dataclass
class Gateway:
    """A notification gateway (SMTP relay, SMS) as the outbox sees one: it may take its time
    (``hold``) or die (``crash``)."""

    timeout: float = 30.0
    hold: bool = False
    crash: bool = False
    sent: list[str] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def send(self, notification: Notification) -> None:
        if self.crash:
            raise Crash
        if self.hold:
            self.arrived.set()
            self.release.wait(60)
        self.sent.append(notification.dedupe_key)


def pending_notice(session: Session, key: str) -> int:
    notice = Notification(
        channel="sms",
        kind="test",
        subject="s",
        body="b",
        dedupe_key=key,
        created_at=utc_now(),
    )
    session.add(notice)
    session.flush()
    return notice.id


class TestOutboxLeases:
    def test_a_crashed_senders_notice_goes_out_once_its_lease_runs_out(self, db: Session) -> None:
        notice_id = pending_notice(db, "lease:crash")
        sessions, now = sessions_of_test(db), utc_now()
        gateway = Gateway(crash=True)
        with pytest.raises(Crash):
            deliver_pending(sessions, {"sms": gateway}, now=now)
        gateway.crash = False
        lease = outbox_lease_for({"sms": gateway}, batch_for({"sms": gateway}, 500))
        assert deliver_pending(sessions, {"sms": gateway}, now=now + lease / 2) == (0, 0)
        assert deliver_pending(sessions, {"sms": gateway}, now=now + lease) == (1, 0)
        assert deliver_pending(sessions, {"sms": gateway}, now=now + 2 * lease) == (0, 0)
        assert gateway.sent == ["lease:crash"]
        row = db.get(Notification, notice_id, populate_existing=True)
        assert row is not None
        assert (row.status, row.attempts, row.leased_until) == ("sent", 2, None)

    def test_a_claim_is_bounded_so_a_lease_stays_short(self) -> None:
        smtp = Gateway(timeout=30.0)
        assert batch_for({"email": smtp}, 1000) == 18
        assert outbox_lease_for({"email": smtp}, 18) <= timedelta(minutes=10)
        assert batch_for({"log": Gateway(timeout=0.0)}, 1000) == 1000


def test_no_lock_is_held_while_a_gateway_takes_its_time(own_engine: Engine) -> None:
    """While the gateway holds the notice, another connection locks and writes its row
    without waiting: the outbox holds no transaction while it sends."""

    def open_session() -> Session:
        return Session(own_engine, expire_on_commit=False)

    with open_session() as session, session.begin():
        notice_id = pending_notice(session, "lease:slow")
    gateway = Gateway(hold=True)
    outcome: list[tuple[int, int]] = []
    sender = threading.Thread(
        target=lambda: outcome.append(deliver_pending(open_session, {"sms": gateway}))
    )
    sender.start()
    try:
        assert gateway.arrived.wait(60), "the notice never reached the gateway"
        probe_row(own_engine, Notification, notice_id)
    finally:
        gateway.release.set()
        sender.join(60)
    assert outcome == [(1, 0)]
    with open_session() as session:
        row = session.get(Notification, notice_id)
        assert row is not None
        assert (row.status, row.attempts) == (NotificationStatus.SENT, 1)
