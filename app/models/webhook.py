from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, IdType, TimestampMixin, VersionMixin, str_enum


class WebhookDeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # dead-lettered: every retry of the retry window failed


class WebhookSubscription(IdMixin, TimestampMixin, VersionMixin, Base):
    """A URL subscribed to event types. ``secret`` signs deliveries (Standard Webhooks) and
    must stay readable to do so; it is shown to the subscriber once, on create and rotate.

    With an ``owner_user_id`` it is that user's own notification endpoint instead: it gets
    the user's notices (the ``webhook`` channel) and never audit events, which are for the
    administrators' subscriptions only.
    """

    __tablename__ = "webhook_subscriptions"

    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[Any]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(String(300), default="")
    secret: Mapped[str] = mapped_column(String(100))
    paused: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="SET NULL")
    )
    owner_user_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )


class WebhookDelivery(IdMixin, Base):
    """The webhook outbox: one row per event and subscription, written in the transaction of
    the event; ``message_id`` is the ``webhook-id`` receivers deduplicate on (it survives
    retries and replays)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    subscription_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(60))
    message_id: Mapped[str] = mapped_column(String(60), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[WebhookDeliveryStatus] = mapped_column(
        str_enum(WebhookDeliveryStatus, 10), default=WebhookDeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
