from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, IdType, TimestampMixin, VersionMixin, str_enum
from app.models.enums import FollowUpKind, PlanStatus


class Plan(IdMixin, TimestampMixin, VersionMixin, Base):
    """One company, one policy (一企一策): at most one open plan per enterprise."""

    __tablename__ = "plans"
    __table_args__ = (
        Index(
            "uq_plans_open_per_enterprise",
            "enterprise_id",
            unique=True,
            sqlite_where=text("status != 'closed'"),
            postgresql_where=text("status != 'closed'"),
        ),
    )

    enterprise_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[PlanStatus] = mapped_column(str_enum(PlanStatus, 20), default=PlanStatus.DRAFT)
    summary: Mapped[str] = mapped_column(Text, default="")
    recommended_policies: Mapped[list[Any]] = mapped_column(JSON, default=list)
    closed_at: Mapped[datetime | None] = mapped_column()


class Milestone(IdMixin, TimestampMixin, Base):
    __tablename__ = "milestones"

    plan_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("plans.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(100), default="")
    due_date: Mapped[date | None] = mapped_column()
    done: Mapped[bool] = mapped_column(default=False)
    done_at: Mapped[datetime | None] = mapped_column()


class FollowUp(IdMixin, Base):
    """A visit, call or note logged against a plan (and optionally one assignment)."""

    __tablename__ = "follow_ups"

    plan_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("plans.id", ondelete="CASCADE"), index=True
    )
    assignment_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("assignments.id", ondelete="SET NULL"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="SET NULL")
    )
    kind: Mapped[FollowUpKind] = mapped_column(str_enum(FollowUpKind, 10))
    occurred_at: Mapped[datetime] = mapped_column()
    notes: Mapped[str] = mapped_column(Text, default="")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    next_follow_up_date: Mapped[date | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()


class Feedback(IdMixin, Base):
    """The enterprise's 1–5 rating of a completed assignment; it feeds the provider's rating."""

    __tablename__ = "feedback"

    assignment_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("assignments.id", ondelete="CASCADE"), unique=True
    )
    author_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="SET NULL")
    )
    rating: Mapped[int] = mapped_column(Integer)
    satisfied: Mapped[bool] = mapped_column()
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column()
