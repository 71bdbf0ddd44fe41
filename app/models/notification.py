from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, IdType, str_enum


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Notification(IdMixin, Base):
    """The outbox: reminders and escalations are written here in the same transaction as the
    state that caused them, and a sender delivers them afterwards (at-least-once).

    ``dedupe_key`` makes a reminder idempotent: the supervision sweep may run any number of
    times and each overdue item is announced once per escalation level.
    """

    __tablename__ = "notifications"

    recipient_user_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(String(20), default="log")
    kind: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    region_code: Mapped[str] = mapped_column(String(6), default="", index=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[NotificationStatus] = mapped_column(
        str_enum(NotificationStatus, 10), default=NotificationStatus.PENDING, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    # Set while a sender has it in flight (claimed, being sent outside any transaction); a
    # crashed sender's notice is due again once this has passed.
    leased_until: Mapped[datetime | None] = mapped_column()
    # After a failed attempt, not due before this (exponential back-off with jitter, the same
    # helper as webhooks'); ``None`` is due at once.
    next_attempt_at: Mapped[datetime | None] = mapped_column()
