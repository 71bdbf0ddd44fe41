from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, IdMixin, IdType, TimestampMixin, VersionMixin, str_enum
from app.models.enums import AssignmentOrigin, AssignmentStatus

if TYPE_CHECKING:
    from app.models.help_request import HelpRequest
    from app.models.provider import Provider


class Assignment(IdMixin, TimestampMixin, VersionMixin, Base):
    """A request × provider pair, from a match run or by hand, with its score explained."""

    __tablename__ = "assignments"
    # Status first, so every lookup by status still has its index; the provider after it
    # counts a provider's open assignments from the index alone (the supply's load in
    # /stats read 120k rows for that on SQLite: 0.2 s at province scale, 0.04 s now).
    __table_args__ = (Index("ix_assignments_status_provider_id", "status", "provider_id"),)

    request_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("help_requests.id", ondelete="CASCADE"), index=True
    )
    provider_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("providers.id", ondelete="CASCADE"), index=True
    )
    match_run_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("match_runs.id", ondelete="SET NULL"), index=True
    )
    origin: Mapped[AssignmentOrigin] = mapped_column(str_enum(AssignmentOrigin, 20))
    status: Mapped[AssignmentStatus] = mapped_column(str_enum(AssignmentStatus, 20))
    score: Mapped[float] = mapped_column(Float, default=0.0)
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    locked: Mapped[bool] = mapped_column(default=False)
    offered_at: Mapped[datetime | None] = mapped_column()
    offer_expires_at: Mapped[datetime | None] = mapped_column()
    responded_at: Mapped[datetime | None] = mapped_column()
    decline_reason_code: Mapped[str] = mapped_column(String(40), default="")
    decline_reason: Mapped[str] = mapped_column(Text, default="")
    completed_at: Mapped[datetime | None] = mapped_column()
    completion_summary: Mapped[str] = mapped_column(Text, default="", server_default="")

    request: Mapped[HelpRequest] = relationship(lazy="raise")
    provider: Mapped[Provider] = relationship(lazy="raise")


class Exclusion(IdMixin, Base):
    """A forbidden pair: this provider never serves this request (or this whole enterprise)."""

    __tablename__ = "exclusions"
    __table_args__ = (
        CheckConstraint("(request_id IS NULL) <> (enterprise_id IS NULL)", name="one_target"),
    )

    provider_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("providers.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("help_requests.id", ondelete="CASCADE"), index=True
    )
    enterprise_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_by_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column()
