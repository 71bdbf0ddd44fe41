from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, IdType


class Event(IdMixin, Base):
    """Append-only audit log: written in the same transaction as the change it records.

    ``region_code`` is copied from the entity so coordinators' region scoping needs no joins.
    ``actor_id`` is the acting user's id as recorded, with no foreign key: nothing rewrites an
    audit row, and checking the user on every event cost each audited write a row lock
    (migration ``audit_actor_without_fk``).
    """

    __tablename__ = "events"
    # One entity's history (``/events?entity_type=…&entity_id=…``) is a look-up, not a scan
    # of the whole log (migration ``events_entity_index``).
    __table_args__ = (Index("ix_events_entity", "entity_type", "entity_id"),)

    actor_id: Mapped[int | None] = mapped_column(IdType)
    actor_label: Mapped[str] = mapped_column(String(254), default="")
    action: Mapped[str] = mapped_column(String(60), index=True)
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(IdType)
    region_code: Mapped[str] = mapped_column(String(6), default="", index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)


class IdempotencyKey(Base):
    """Replays the stored response when a create is retried with the same ``Idempotency-Key``."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)  # expired keys are purged by age
