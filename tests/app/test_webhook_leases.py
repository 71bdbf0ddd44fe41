"""Webhook deliveries are sent with no database transaction open, leased so that a crashed
sender's deliveries are sent again, and recorded compare-and-set so a late sender changes
nothing. Against a real receiver on loopback that verifies every signature."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.db import make_engine
from app.migrate import upgrade
from app.models import WebhookDelivery, WebhookDeliveryStatus, WebhookSubscription
from app.settings import Settings
from app.webhooks.delivery import Answer, Outcome, claim, deliver_due, lease_for, record
from app.webhooks.service import new_secret
from tests.app.webhook_receiver import Receiver, serving
from tests.conftest import TEST_SECRET, fresh_postgres_database, require_postgres
from tests.factories import sessions_of_test


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving() as state:
        yield state


@pytest.fixture
def settings() -> Settings:
    return Settings(
        environment="test",
        secret_key=TEST_SECRET,
        database_url="sqlite://",
        webhook_allow_private_targets=True,  # the receiver is on loopback
    )


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
        with own_engine.connect() as probe:
            sqlite = own_engine.dialect.name == "sqlite"
            raw: Any = probe.connection.driver_connection
            if sqlite:  # on the driver's connection: no BEGIN before it; locked → fails at once
                raw.execute("PRAGMA busy_timeout = 0")
            with probe.begin():
                locked = select(WebhookDelivery.id).where(WebhookDelivery.id == delivery_id)
                if not sqlite:
                    locked = locked.with_for_update(nowait=True)
                try:
                    assert probe.scalar(locked) == delivery_id
                    probe.execute(
                        update(WebhookDelivery)
                        .where(WebhookDelivery.id == delivery_id)
                        .values(last_error="written during the delivery")
                    )
                except OperationalError as exc:
                    pytest.fail(f"a lock was held while sending: {exc}")
            if sqlite:  # back to the engine's setting for the pool's next user
                raw.execute("PRAGMA busy_timeout = 5000")
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
