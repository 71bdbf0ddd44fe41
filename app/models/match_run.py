from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, IdType, TimestampMixin, VersionMixin, str_enum
from app.models.enums import MatchRunStatus


class MatchRun(IdMixin, TimestampMixin, VersionMixin, Base):
    """A durable matching job: claimed by a worker under a lease, its proposals written at once."""

    __tablename__ = "match_runs"

    created_by_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    scope_region: Mapped[str] = mapped_column(String(6), default="")
    scope_categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    scope_request_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    weights: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[MatchRunStatus] = mapped_column(
        str_enum(MatchRunStatus, 20), default=MatchRunStatus.QUEUED, index=True
    )
    stage: Mapped[str] = mapped_column(String(40), default="")
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str] = mapped_column(String(100), default="")
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    published_at: Mapped[datetime | None] = mapped_column()
    reverted_at: Mapped[datetime | None] = mapped_column()
    # The X-Request-ID of the call that queued the run, bound to the worker's log lines.
    request_id: Mapped[str] = mapped_column(String(128), default="")
