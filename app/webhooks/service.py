"""Subscriptions and their delivery log; the fan-out of audit events into the outbox.

Only administrators manage webhooks (an integration uses an administrator's API key): a
subscription sees every event of every region.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.common.concurrency import check_if_match
from app.common.pagination import PageParams, paginate
from app.common.principal import Principal
from app.common.schemas import Page
from app.errors import InvalidInput, NotFound
from app.models import WebhookDelivery, WebhookDeliveryStatus, WebhookSubscription
from app.settings import Settings
from app.webhooks import repository
from app.webhooks.schemas import (
    WebhookCreate,
    WebhookDeliveryRead,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)
from app.webhooks.targets import TargetRefused, check_target

CACHE_KEY = "zhuqi.webhook_subscriptions"


def new_secret() -> str:
    """``whsec_`` + base64 of 24 random bytes, the Standard Webhooks secret format."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def checked_url(url: str, settings: Settings) -> str:
    try:
        check_target(url, settings)
    except TargetRefused as exc:
        raise InvalidInput(str(exc), field="url") from exc
    return url


def _with_secret(subscription: WebhookSubscription) -> WebhookWithSecret:
    read = WebhookRead.model_validate(subscription)
    return WebhookWithSecret(**read.model_dump(), secret=subscription.secret)


def create(
    session: Session, *, principal: Principal, data: WebhookCreate, settings: Settings
) -> WebhookWithSecret:
    subscription = WebhookSubscription(
        url=checked_url(data.url, settings),
        events=sorted(set(data.events)),
        description=data.description,
        secret=new_secret(),
        created_by_id=principal.user_id,
    )
    session.add(subscription)
    session.flush()
    session.info.pop(CACHE_KEY, None)
    return _with_secret(subscription)


def get(session: Session, subscription_id: int) -> WebhookSubscription:
    """An event subscription; users' own notification endpoints are theirs to manage."""
    subscription = session.get(WebhookSubscription, subscription_id)
    if subscription is None or subscription.owner_user_id is not None:
        raise NotFound(f"webhook {subscription_id} not found")
    return subscription


def list_(session: Session, *, page: PageParams) -> Page[WebhookRead]:
    return paginate(
        session,
        repository.subscriptions(),
        WebhookSubscription.id,
        page,
        WebhookRead.model_validate,
    )


def update(
    session: Session,
    *,
    subscription: WebhookSubscription,
    data: WebhookUpdate,
    if_match: str | None,
    settings: Settings,
) -> WebhookSubscription:
    """Change the URL or events, or pause and resume (paused: deliveries wait, none lost)."""
    check_if_match(if_match, subscription.version)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "url" in changes:
        checked_url(changes["url"], settings)
    if "events" in changes:
        changes["events"] = sorted(set(changes["events"]))
    for key, value in changes.items():
        setattr(subscription, key, value)
    session.flush()
    session.info.pop(CACHE_KEY, None)
    return subscription


def rotate_secret(session: Session, *, subscription: WebhookSubscription) -> WebhookWithSecret:
    """A new secret signs every delivery from now on, retries of older ones included."""
    subscription.secret = new_secret()
    session.flush()
    return _with_secret(subscription)


def deliveries(
    session: Session, *, subscription: WebhookSubscription, page: PageParams
) -> Page[WebhookDeliveryRead]:
    return paginate(
        session,
        repository.deliveries_of(subscription.id),
        WebhookDelivery.id,
        page,
        WebhookDeliveryRead.model_validate,
    )


def replay(
    session: Session, *, subscription: WebhookSubscription, delivery_id: int
) -> WebhookDelivery:
    """Send a delivery again (sent or dead-lettered alike), now, with the same ``webhook-id``
    so a receiver that already has it can tell."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.subscription_id != subscription.id:
        raise NotFound(f"delivery {delivery_id} of webhook {subscription.id} not found")
    delivery.status = WebhookDeliveryStatus.PENDING
    delivery.next_attempt_at = utc_now()
    delivery.attempts = 0
    delivery.created_at = utc_now()  # the retry window starts again
    session.flush()
    return delivery


def subscribed(events: list[Any], event_type: str) -> bool:
    family = event_type.split(".", 1)[0] + ".*"
    return any(e in ("*", event_type, family) for e in events)


def payload_of(event: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """What a receiver gets: the event's identity, never row contents (a snapshot can hold
    personal data or credentials' hashes); it reads the details through the API. ``event``
    is the event's columns as its insert wrote them (with its ``id``)."""
    return {
        "type": event["action"],
        "timestamp": at.isoformat(),
        "data": {
            "event_id": event["id"],
            "entity_type": event["entity_type"],
            "entity_id": event["entity_id"],
            "region_code": event["region_code"],
        },
    }


def _subscriptions(session: Session) -> list[tuple[int, list[Any]]]:
    """(id, event types) of the active subscriptions, read once per session."""
    cached: list[tuple[int, list[Any]]] | None = session.info.get(CACHE_KEY)
    if cached is None:
        cached = [(s.id, list(s.events)) for s in repository.active_subscriptions(session)]
        session.info[CACHE_KEY] = cached
    return cached


def known_to_have_none(session: Session) -> bool | None:
    """Whether this session already knows there is no subscription (None: it has not read
    them yet), so that an event's INSERT asks for their count only when it is needed."""
    cached: list[tuple[int, list[Any]]] | None = session.info.get(CACHE_KEY)
    return None if cached is None else not cached


def note_count(session: Session, count: int) -> None:
    """What an event's INSERT said of the subscriptions: none at all is the whole list (the
    SELECT ``_subscriptions`` would make is saved); some are read when first needed."""
    if count == 0:
        session.info[CACHE_KEY] = []


def subscribed_to_any(session: Session, actions: Iterable[str]) -> bool:
    """Whether an active subscription wants any of these event types."""
    subscriptions = _subscriptions(session)
    return any(subscribed(types, action) for action in actions for _, types in subscriptions)


def enqueue_many(session: Session, events: Sequence[Mapping[str, Any]]) -> int:
    """One outbox row per subscription to each of these events, in the events' transaction,
    in one INSERT. Each mapping holds the event's ``id``, ``action``, ``entity_type``,
    ``entity_id`` and ``region_code``, as its insert wrote them."""
    subscriptions = _subscriptions(session)
    now = utc_now()
    rows = [
        {
            "subscription_id": subscription_id,
            "event_type": event["action"],
            "message_id": f"msg_{uuid.uuid4().hex}",
            "payload": payload_of(event, now),
            "status": WebhookDeliveryStatus.PENDING,
            "attempts": 0,
            "last_error": "",
            "next_attempt_at": now,
            "created_at": now,
        }
        for event in events
        for subscription_id, types in subscriptions
        if subscribed(types, event["action"])
    ]
    if rows:
        session.execute(insert(WebhookDelivery), rows)
    return len(rows)
