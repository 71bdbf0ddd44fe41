"""Sending the webhook outbox: signed per Standard Webhooks, retried with exponential
back-off and full jitter for at least a day, then dead-lettered.

Receivers get ``webhook-id`` (stable across retries and replays: deduplicate on it),
``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` over
``id.timestamp.body`` with the subscription's secret), exactly what the ``standardwebhooks``
libraries verify. Any 2xx is success; redirects are not followed (the target was checked,
its redirect would not be).

No HTTP call ever runs inside a database transaction (a slow receiver would hold row locks
on PostgreSQL, and on SQLite the one write lock that every request needs): a short
transaction *claims* a batch, leasing each row by moving its ``next_attempt_at`` past the
time the batch can take; the sends run with no transaction open; a second short
transaction *records* each answer, compare-and-set on the claim (``attempts`` and the lease)
so a sender whose lease ran out and whose row another worker took records nothing. A sender
that crashes mid-batch leaves its rows to come due again when the lease expires.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
from sqlalchemy import CursorResult, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from app.common.backoff import backoff
from app.common.clock import utc_now
from app.models import WebhookDelivery, WebhookDeliveryStatus, WebhookSubscription
from app.observability import metrics
from app.observability.logs import get_logger
from app.settings import Settings
from app.webhooks import repository
from app.webhooks.targets import TargetRefused, check_target

logger = get_logger("zhuqi.webhooks")
BATCH = 50
LEASE_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class Outcome:
    sent: int = 0
    retrying: int = 0
    dead: int = 0


def sign(secret: str, message_id: str, at: datetime, body: str) -> dict[str, str]:
    signature = Webhook(secret).sign(message_id, at, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


@dataclass(frozen=True)
class Claimed:
    """What a send needs, read in the claim's transaction: the send itself holds no row.
    ``attempts`` and ``lease`` identify the claim when its answer is recorded."""

    delivery_id: int
    attempts: int
    lease: datetime
    created_at: datetime
    message_id: str
    body: str
    url: str
    secret: str


def lease_for(settings: Settings, batch: int = BATCH) -> timedelta:
    """Longer than a batch can take (every send timing out), so no two workers ever send one
    claim at once; a crashed worker's rows come due again after it."""
    return batch * timedelta(seconds=settings.webhook_timeout_seconds) + LEASE_MARGIN


def claim(
    session: Session, now: datetime, *, lease: timedelta, limit: int = BATCH
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries (``SKIP LOCKED`` beside other workers): each
    counts an attempt now, so one whose sender crashed still moves towards its dead-letter."""
    until = now + lease
    claimed = []
    for delivery in repository.due(session, now, limit):
        subscription = session.get(WebhookSubscription, delivery.subscription_id)
        assert subscription is not None  # the foreign key cascades
        delivery.attempts += 1
        delivery.next_attempt_at = until
        claimed.append(
            Claimed(
                delivery_id=delivery.id,
                attempts=delivery.attempts,
                lease=until,
                created_at=delivery.created_at,
                message_id=delivery.message_id,
                body=json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")),
                url=subscription.url,
                secret=subscription.secret,
            )
        )
    session.flush()
    return claimed


@dataclass(frozen=True)
class Answer:
    ok: bool
    status_code: int | None
    error: str
    at: datetime


def send(client: httpx.Client, item: Claimed, settings: Settings, now: datetime) -> Answer:
    """One signed POST; never raises (the answer says what went wrong)."""
    try:
        check_target(item.url, settings)  # resolves the name: outside any transaction too
    except TargetRefused as exc:
        return Answer(False, None, f"target refused: {exc}", now)
    # Signed at the wall-clock time of sending: receivers refuse stale timestamps (5 min).
    headers = sign(item.secret, item.message_id, utc_now(), item.body)
    try:
        response = client.post(item.url, content=item.body.encode(), headers=headers)
    except httpx.HTTPError as exc:
        return Answer(False, None, f"{type(exc).__name__}: {exc}"[:2000], now)
    ok = 200 <= response.status_code < 300
    return Answer(ok, response.status_code, "" if ok else f"HTTP {response.status_code}", now)


def record(session: Session, item: Claimed, answer: Answer, window: timedelta) -> str | None:
    """Settle one claim: ``sent``, ``failed`` (retried after a back-off) or ``dead``; ``None``
    when the claim is no longer ours (its lease ran out and another worker took the row, or
    it was replayed), in which case nothing changes."""
    values: dict[str, object] = {
        "last_status_code": answer.status_code,
        "last_error": answer.error,
    }
    if answer.ok:
        result = "sent"
        values |= {"status": WebhookDeliveryStatus.SENT, "delivered_at": answer.at}
    elif answer.at >= (deadline := item.created_at + window):
        result = "dead"
        values |= {"status": WebhookDeliveryStatus.FAILED}
    else:
        # The last attempt falls on the deadline itself: retried for the whole window.
        result = "failed"
        values |= {"next_attempt_at": min(answer.at + backoff(item.attempts), deadline)}
    updated = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == item.delivery_id,
            WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
            WebhookDelivery.attempts == item.attempts,
            WebhookDelivery.next_attempt_at == item.lease,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result if cast(CursorResult[Any], updated).rowcount == 1 else None


def deliver_due(
    open_session: Callable[[], Session],
    settings: Settings,
    *,
    now: datetime | None = None,
    client: httpx.Client | None = None,
    limit: int = BATCH,
) -> Outcome:
    """Send one batch of what is due: claim (short transaction), send (none open), record
    (short transaction). At-least-once: a crash after a send and before the record sends
    again after the lease, with the same ``webhook-id``."""
    now = now or utc_now()
    window = timedelta(hours=settings.webhook_retry_hours)
    with open_session() as session, session.begin():
        claimed = claim(session, now, lease=lease_for(settings, limit), limit=limit)
    if not claimed:
        return Outcome()
    own = client is None
    http = client or httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
    try:
        answers = [(item, send(http, item, settings, now)) for item in claimed]
    finally:
        if own:
            http.close()
    counts = {"sent": 0, "failed": 0, "dead": 0}
    with open_session() as session, session.begin():
        for item, answer in answers:
            result = record(session, item, answer, window)
            if result is not None:
                counts[result] += 1
                metrics.observe_delivery("webhook", result)
    if any(counts.values()):
        logger.info("webhooks delivered", **counts)
    return Outcome(sent=counts["sent"], retrying=counts["failed"], dead=counts["dead"])
