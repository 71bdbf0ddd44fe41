from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, Select, func, select
from sqlalchemy.orm import Session

from app.models import WebhookDelivery, WebhookDeliveryStatus, WebhookSubscription


def subscriptions() -> Select[Any]:
    """Event subscriptions: users' own notification endpoints are not the admins' list."""
    return select(WebhookSubscription).where(WebhookSubscription.owner_user_id.is_(None))


def deliveries_of(subscription_id: int) -> Select[Any]:
    return select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)


def active_subscriptions(session: Session) -> Sequence[WebhookSubscription]:
    """Paused ones too: their deliveries queue up and go out when they resume. Users' own
    notification endpoints never get audit events."""
    return session.scalars(subscriptions().order_by(WebhookSubscription.id)).all()


def subscription_count() -> ScalarSelect[int]:
    """How many event subscriptions there are (paused too, as ``active_subscriptions``), as a
    scalar subquery: an event's INSERT returns it alongside the event's id."""
    return (
        select(func.count())
        .select_from(WebhookSubscription)
        .where(WebhookSubscription.owner_user_id.is_(None))
        .scalar_subquery()
    )


def due(session: Session, now: datetime, limit: int) -> Sequence[WebhookDelivery]:
    """Pending deliveries whose time has come, of subscriptions not paused; locked so that
    workers side by side never send one twice (``SKIP LOCKED``)."""
    statement: Select[Any] = (
        select(WebhookDelivery)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(
            WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            WebhookSubscription.paused.is_(False),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    )
    return session.scalars(statement).all()
