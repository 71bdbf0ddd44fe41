"""Sending the webhook outbox: signed per Standard Webhooks, retried with exponential
back-off and full jitter for at least a day, then dead-lettered.

Receivers get ``webhook-id`` (stable across retries and replays: deduplicate on it),
``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` over
``id.timestamp.body`` with the subscription's secret), exactly what the ``standardwebhooks``
libraries verify. Any 2xx is success; redirects are not followed (the target was checked,
its redirect would not be).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from app.common.clock import utc_now
from app.models import WebhookDelivery, WebhookDeliveryStatus, WebhookSubscription
from app.observability import metrics
from app.observability.logs import get_logger
from app.settings import Settings
from app.webhooks import repository
from app.webhooks.targets import TargetRefused, check_target

logger = get_logger("zhuqi.webhooks")
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=4)
BATCH = 50


def backoff(attempt: int, rng: Callable[[], float] = random.random) -> timedelta:
    """Wait before attempt ``attempt + 1``: 30 s doubling per attempt, capped at 4 h, with
    full jitter (a uniform share of it) so a receiver back from an outage is not hit by
    every delivery at once. Over a 26 h window that is about 15 attempts."""
    ceiling = min(FIRST_RETRY * (1 << min(max(attempt - 1, 0), 20)), LONGEST_WAIT)
    return ceiling / 2 + ceiling / 2 * rng()


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


def _attempt(
    client: httpx.Client,
    subscription: WebhookSubscription,
    delivery: WebhookDelivery,
    settings: Settings,
    now: datetime,
) -> tuple[bool, int | None, str]:
    try:
        check_target(subscription.url, settings)
    except TargetRefused as exc:
        return False, None, f"target refused: {exc}"
    body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":"))
    headers = sign(subscription.secret, delivery.message_id, now, body)
    try:
        response = client.post(subscription.url, content=body.encode(), headers=headers)
    except httpx.HTTPError as exc:
        return False, None, f"{type(exc).__name__}: {exc}"[:2000]
    ok = 200 <= response.status_code < 300
    return ok, response.status_code, "" if ok else f"HTTP {response.status_code}"


def _settle(
    delivery: WebhookDelivery,
    ok: bool,
    code: int | None,
    error: str,
    now: datetime,
    window: timedelta,
) -> str:
    delivery.attempts += 1
    delivery.last_status_code = code
    delivery.last_error = error
    if ok:
        delivery.status = WebhookDeliveryStatus.SENT
        delivery.delivered_at = now
        return "sent"
    deadline = delivery.created_at + window
    if now >= deadline:
        delivery.status = WebhookDeliveryStatus.FAILED
        return "dead"
    # The last attempt falls on the deadline itself: retried for the whole window.
    delivery.next_attempt_at = min(now + backoff(delivery.attempts), deadline)
    return "failed"


def deliver_due(
    session: Session,
    settings: Settings,
    *,
    now: datetime | None = None,
    client: httpx.Client | None = None,
) -> Outcome:
    """Send what is due (at most one batch); the caller commits. At-least-once: a crash
    after a send and before the commit sends again, with the same ``webhook-id``."""
    now = now or utc_now()
    window = timedelta(hours=settings.webhook_retry_hours)
    counts = {"sent": 0, "failed": 0, "dead": 0}
    own = client is None
    http = client or httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
    try:
        for delivery in repository.due(session, now, BATCH):
            subscription = session.get(WebhookSubscription, delivery.subscription_id)
            assert subscription is not None  # the foreign key cascades
            ok, code, error = _attempt(http, subscription, delivery, settings, now)
            result = _settle(delivery, ok, code, error, now, window)
            counts[result] += 1
            metrics.observe_delivery("webhook", result)
    finally:
        if own:
            http.close()
    session.flush()
    if any(counts.values()):
        logger.info("webhooks delivered", **counts)
    return Outcome(sent=counts["sent"], retrying=counts["failed"], dead=counts["dead"])
