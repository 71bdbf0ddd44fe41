"""Delivery of the notification outbox. Email, SMS and WeChat senders plug in by channel;
the default sender writes a log line, so a fresh install needs no gateway."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.common.backoff import backoff
from app.common.clock import utc_now
from app.models import Notification, NotificationStatus
from app.notifications.email import SmtpSender
from app.notifications.webhook import WebhookChannel
from app.observability import metrics
from app.settings import Settings

logger = logging.getLogger("zhuqi.notifications")
# Dead-lettered (``failed``) after this many tries. With the back-off between them (30 s
# doubling, full jitter) the last one comes about 2 to 4 hours after the first, so a relay
# that is down for a while does not lose the notice, and one that never comes back does not
# keep it retrying for ever.
MAX_ATTEMPTS = 10
LEASE_MARGIN = timedelta(seconds=60)
LONGEST_LEASE = timedelta(minutes=10)


class Sender(Protocol):
    def send(self, notification: Notification) -> None:
        """Deliver or raise; raising leaves the notification pending for a retry."""


class LogSender:
    """Writes each notification to the ``zhuqi.notifications`` log (DEBUG; a summary per
    delivery batch is logged at INFO so a busy sweep does not flood the console)."""

    def send(self, notification: Notification) -> None:
        logger.debug(
            "notify user=%s kind=%s subject=%s",
            notification.recipient_user_id,
            notification.kind,
            notification.subject,
        )


DEFAULT_SENDERS: Mapping[str, Sender] = {"log": LogSender(), "webhook": WebhookChannel()}


def senders_for(settings: Settings) -> Mapping[str, Sender]:
    """The log sender and users' own webhooks always; SMTP once a relay is configured
    (``ZHUQI_SMTP_*``)."""
    senders: dict[str, Sender] = dict(DEFAULT_SENDERS)
    if settings.smtp_host:
        senders["email"] = SmtpSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout=settings.smtp_timeout_seconds,
        )
    return senders


def _timeout(senders: Mapping[str, Sender]) -> timedelta:
    """The longest a send may take (senders with a ``timeout``, like SMTP's; the log none)."""
    seconds = max((float(getattr(s, "timeout", 0.0)) for s in senders.values()), default=0.0)
    return timedelta(seconds=seconds)


def lease_for(senders: Mapping[str, Sender], limit: int) -> timedelta:
    """Longer than a batch can take with every send timing out, so no two workers ever send
    one claim; a crashed worker's notices come due again after it."""
    return limit * _timeout(senders) + LEASE_MARGIN


def batch_for(senders: Mapping[str, Sender], wanted: int) -> int:
    """At most ``wanted``, and few enough that a crashed worker's lease runs out within
    :data:`LONGEST_LEASE` (18 notices a claim with SMTP's 30 s timeout; the log is not
    limited)."""
    timeout = _timeout(senders)
    if not timeout:
        return wanted
    return max(1, min(wanted, (LONGEST_LEASE - LEASE_MARGIN) // timeout))


def _in_transaction(sender: Sender) -> bool:
    """A hand-over to another outbox (the webhook channel) is a write, not a network call:
    it runs in the claim's transaction and is done there, exactly once."""
    return bool(getattr(sender, "in_transaction", False))


def _claim(
    session: Session, senders: Mapping[str, Sender], now: datetime, limit: int
) -> tuple[list[Notification], list[tuple[Notification, str | None]]]:
    """Lease up to ``limit`` pending notices (``SKIP LOCKED`` beside other workers), each
    counting an attempt; hand-overs are done on the spot. Returns the leased ones, detached
    (sent with no session), and the hand-overs with their error if any."""
    pending = session.scalars(
        select(Notification)
        .where(
            Notification.status == NotificationStatus.PENDING,
            or_(Notification.leased_until.is_(None), Notification.leased_until <= now),
            or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now),
        )
        .order_by(Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    until = now + lease_for(senders, limit)
    leased: list[Notification] = []
    handed: list[tuple[Notification, str | None]] = []
    for notification in pending:
        sender = senders.get(notification.channel) or senders["log"]
        notification.attempts += 1
        if _in_transaction(sender):
            error = None
            try:
                sender.send(notification)
            except Exception as exc:
                error = str(exc)[:2000] or type(exc).__name__
            _settle(notification, error, now)
            handed.append((notification, error))
        else:
            notification.leased_until = until
            leased.append(notification)
    session.flush()
    for notification in leased:
        session.expunge(notification)
    return leased, handed


def _settle(notification: Notification, error: str | None, now: datetime) -> str:
    """The outcome on the (attached) row: sent, failed (pending again, not due before its
    back-off has passed) or dead."""
    notification.leased_until = None
    if error is None:
        notification.status, notification.sent_at = NotificationStatus.SENT, now
        notification.next_attempt_at = None
        return "sent"
    notification.last_error = error
    if notification.attempts >= MAX_ATTEMPTS:
        notification.status, notification.next_attempt_at = NotificationStatus.FAILED, None
        return "dead"
    notification.next_attempt_at = now + backoff(notification.attempts)
    return "failed"


def _record(session: Session, sent: Notification, error: str | None, now: datetime) -> str | None:
    """Settle one leased notice, compare-and-set on its claim (attempt and lease): ``None``
    when the lease ran out and another worker took it, in which case nothing changes."""
    row = session.scalars(
        select(Notification)
        .where(
            Notification.id == sent.id,
            Notification.status == NotificationStatus.PENDING,
            Notification.attempts == sent.attempts,
            Notification.leased_until == sent.leased_until,
        )
        .with_for_update()
    ).one_or_none()
    return None if row is None else _settle(row, error, now)


def _renew(
    open_session: Callable[[], Session], notices: list[Notification], until: datetime
) -> set[int]:
    """Push the lease of notices still ours to ``until`` (compare-and-set on the lease they
    share, one statement); returns the ids kept. A notice whose lease ran out and that
    another worker took is no longer ours: it is neither sent nor recorded here."""
    ids, held = [n.id for n in notices], {n.leased_until for n in notices}
    with open_session() as session, session.begin():
        session.execute(
            update(Notification)
            .where(
                Notification.id.in_(ids),
                Notification.status == NotificationStatus.PENDING,
                Notification.leased_until.in_(held),
            )
            .values(leased_until=until)
            .execution_options(synchronize_session=False)
        )
        kept = set(
            session.scalars(
                select(Notification.id).where(
                    Notification.id.in_(ids), Notification.leased_until == until
                )
            )
        )
    for notification in notices:
        if notification.id in kept:
            notification.leased_until = until
    return kept


def deliver_pending(
    open_session: Callable[[], Session],
    senders: Mapping[str, Sender] = DEFAULT_SENDERS,
    *,
    limit: int = 500,
    now: datetime | None = None,
    clock: Callable[[], datetime] | None = None,
) -> tuple[int, int]:
    """Send one batch of what is pending; returns (sent, failed). No network call runs in a
    transaction (an SMTP relay taking its time held SQLite's one write lock, or row locks on
    PostgreSQL): claim in a short transaction, send with none open, record in another.
    At-least-once: a crash after a send and before the record sends again once the lease
    runs out, so receivers should tolerate duplicates (``dedupe_key``, ``Message-ID``).

    The lease budgets each send its sender's timeout, but SMTP's timeout bounds each socket
    operation, not the whole conversation, so a relay answering slowly can outlast it.
    Before each send, when less than a send's timeout (and half the margin) of the lease is
    left, the whole batch's lease (sent ones are recorded only at its end) is renewed for as
    long as the claim took: one short transaction, only in a slow batch. A rival worker
    therefore never re-sends a notice still in this batch; a single send longer than a whole
    lease (minutes) can still go twice, as can one whose worker crashed: at-least-once.

    ``clock`` reads the time during the batch (answers, renewals); ``now`` alone fixes it."""
    start = now

    def read() -> datetime:
        if clock is not None:
            return clock()
        return start if start is not None else utc_now()

    now, limit = now or read(), batch_for(senders, limit)
    with open_session() as session, session.begin():
        leased, handed = _claim(session, senders, now, limit)
    # Renewed below a send's timeout plus half the margin: never in a batch going at pace (a
    # claim leases at least a timeout plus the whole margin per notice).
    low_water, full_lease = _timeout(senders) + LEASE_MARGIN / 2, lease_for(senders, limit)
    answers: list[tuple[Notification, str | None, datetime]] = []
    lost: set[int] = set()
    for notification in leased:
        if notification.id in lost:
            continue
        current = read()
        assert notification.leased_until is not None  # leased by the claim
        if notification.leased_until - current < low_water:
            # the whole batch: those sent are recorded only at its end
            ours = [n for n in leased if n.id not in lost]
            kept = _renew(open_session, ours, current + full_lease)
            lost.update(n.id for n in ours if n.id not in kept)
            if notification.id in lost:
                continue
        sender = senders.get(notification.channel) or senders["log"]
        try:
            sender.send(notification)
        except Exception as exc:
            # A failure backs off from when its answer came (a refused log-in can take seconds).
            answers.append((notification, str(exc)[:2000] or type(exc).__name__, read()))
        else:
            answers.append((notification, None, read()))
    results = [
        (notification.channel, "sent" if error is None else _dead_or_failed(notification))
        for notification, error in handed
    ]
    if answers:
        with open_session() as session, session.begin():
            for notification, error, at in answers:
                result = _record(session, notification, error, at)
                if result is not None:
                    results.append((notification.channel, result))
    for channel, result in results:
        metrics.observe_delivery(channel, result)
    sent = sum(1 for _, result in results if result == "sent")
    failed = len(results) - sent
    if sent or failed:
        logger.info("outbox: %d notification(s) sent, %d failed", sent, failed)
    return sent, failed


def _dead_or_failed(notification: Notification) -> str:
    return "dead" if notification.status == NotificationStatus.FAILED else "failed"
