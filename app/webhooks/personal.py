"""Each user's own webhook endpoint for their notices (the ``webhook`` notification channel).

A personal endpoint is a :class:`WebhookSubscription` with an owner, so a notice sent this way
gets everything an event subscription has: the Standard Webhooks signature with a secret only
its owner saw, retries with back-off for a day, the dead-letter, the delivery log, pausing,
secret rotation. The notification outbox *hands* a notice over by writing a delivery row in
its own transaction: no HTTP there, and the hand-over happens exactly once (the delivery's
``webhook-id`` is derived from the notice's ``dedupe_key``, unique).
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.common.concurrency import check_if_match
from app.common.pagination import PageParams, paginate
from app.common.schemas import Page
from app.errors import Conflict, NotFound
from app.models import Notification, WebhookDelivery, WebhookSubscription
from app.settings import Settings
from app.webhooks import repository
from app.webhooks.schemas import (
    NotificationWebhookCreate,
    NotificationWebhookRead,
    NotificationWebhookUpdate,
    NotificationWebhookWithSecret,
    WebhookDeliveryRead,
)
from app.webhooks.service import checked_url, new_secret

EVENTS = ["notification.*"]


def find(session: Session, user_id: int) -> WebhookSubscription | None:
    return session.scalar(
        select(WebhookSubscription).where(WebhookSubscription.owner_user_id == user_id)
    )


def get(session: Session, user_id: int) -> WebhookSubscription:
    endpoint = find(session, user_id)
    if endpoint is None:
        raise NotFound("you have no notification webhook; create one first")
    return endpoint


def _with_secret(endpoint: WebhookSubscription) -> NotificationWebhookWithSecret:
    read = NotificationWebhookRead.model_validate(endpoint)
    return NotificationWebhookWithSecret(**read.model_dump(), secret=endpoint.secret)


def create(
    session: Session, *, user_id: int, data: NotificationWebhookCreate, settings: Settings
) -> NotificationWebhookWithSecret:
    """One endpoint per user (change its URL rather than adding a second)."""
    if find(session, user_id) is not None:
        raise Conflict("you already have a notification webhook; change or delete it")
    endpoint = WebhookSubscription(
        url=checked_url(data.url, settings),
        events=EVENTS,
        description="notifications",
        secret=new_secret(),
        created_by_id=user_id,
        owner_user_id=user_id,
    )
    session.add(endpoint)
    session.flush()
    return _with_secret(endpoint)


def update(
    session: Session,
    *,
    endpoint: WebhookSubscription,
    data: NotificationWebhookUpdate,
    if_match: str | None,
    settings: Settings,
) -> WebhookSubscription:
    """A new URL, or paused (notices wait in the delivery log, none lost) and resumed."""
    check_if_match(if_match, endpoint.version)
    if data.url is not None:
        endpoint.url = checked_url(data.url, settings)
    if data.paused is not None:
        endpoint.paused = data.paused
    session.flush()
    return endpoint


def rotate_secret(
    session: Session, *, endpoint: WebhookSubscription
) -> NotificationWebhookWithSecret:
    endpoint.secret = new_secret()
    session.flush()
    return _with_secret(endpoint)


def delete(session: Session, *, endpoint: WebhookSubscription) -> None:
    """Its undelivered notices go with it (the deliveries cascade)."""
    session.delete(endpoint)
    session.flush()


def deliveries(
    session: Session, *, endpoint: WebhookSubscription, page: PageParams
) -> Page[WebhookDeliveryRead]:
    return paginate(
        session,
        repository.deliveries_of(endpoint.id),
        WebhookDelivery.id,
        page,
        WebhookDeliveryRead.model_validate,
        count=True,
    )


def message_id_of(notification: Notification) -> str:
    """Stable per notice: a receiver deduplicates on it, whatever is retried or replayed."""
    return "msg_" + hashlib.sha256(notification.dedupe_key.encode()).hexdigest()[:32]


def payload_of(notification: Notification) -> dict[str, Any]:
    """The notice as worded for its recipient (their language), and what it is about; never
    the e-mail address the other channel would use."""
    details = {k: v for k, v in notification.payload.items() if k != "to"}
    return {
        "type": f"notification.{notification.kind}",
        "timestamp": notification.created_at.isoformat(),
        "data": {
            "notification_id": notification.id,
            "kind": notification.kind,
            "language": details.pop("language", None),
            "subject": notification.subject,
            "body": notification.body,
            "region_code": notification.region_code,
            "details": details,
        },
    }


def hand_over(session: Session, notification: Notification) -> bool:
    """Queue the notice for its recipient's endpoint, in the caller's transaction; ``False``
    when the recipient has none (any more). Queued once however often it is called."""
    if notification.recipient_user_id is None:
        return False
    endpoint = find(session, notification.recipient_user_id)
    if endpoint is None:
        return False
    message_id = message_id_of(notification)
    if session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.message_id == message_id)):
        return True
    now = utc_now()
    session.add(
        WebhookDelivery(
            subscription_id=endpoint.id,
            event_type=f"notification.{notification.kind}"[:60],
            message_id=message_id,
            payload=payload_of(notification),
            next_attempt_at=now,
            created_at=now,
        )
    )
    session.flush()
    return True
