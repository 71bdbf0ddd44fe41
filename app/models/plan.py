from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, IdType, TimestampMixin, VersionMixin, str_enum
from app.models.enums import FollowUpKind, PlanStatus

UNDATED = "due_date IS NULL AND due_workdays IS NOT NULL"  # a generated step awaiting its date


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
        Index(
            "ix_plans_preparation_run_id",
            "preparation_run_id",
            sqlite_where=text("preparation_run_id IS NOT NULL"),
            postgresql_where=text("preparation_run_id IS NOT NULL"),
        ),
    )

    enterprise_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[PlanStatus] = mapped_column(str_enum(PlanStatus, 20), default=PlanStatus.DRAFT)
    summary: Mapped[str] = mapped_column(Text, default="")  # Chinese
    summary_en: Mapped[str] = mapped_column(Text, default="", server_default="")
    # False while the summaries are the generated ones (publishing refreshes them); a
    # coordinator's edit sets it, and from then on nothing overwrites their words.
    summary_edited: Mapped[bool] = mapped_column(default=False, server_default=false())
    recommended_policies: Mapped[list[Any]] = mapped_column(JSON, default=list)
    closed_at: Mapped[datetime | None] = mapped_column()
    # The match run whose publish still owes this plan its preparation (template milestones,
    # policies, summary): a large publish commits first and the worker prepares its plans in
    # short batches afterwards (app.bundling.preparation). NULL once prepared. A plain id,
    # not a foreign key: it is a work mark, and the partial index holds only pending plans.
    preparation_run_id: Mapped[int | None] = mapped_column(IdType)

    @property
    def preparing(self) -> bool:
        """Its milestones, policies and summary are still being prepared after a publish."""
        return self.preparation_run_id is not None


class Milestone(IdMixin, TimestampMixin, VersionMixin, Base):
    """A step of a plan. Generated ones come from the category's template for one request
    (``request_id``), owned by the request's provider or by the coordinator; coordinators may
    also add free ones (no request, no owner role)."""

    __tablename__ = "milestones"
    # The generated steps still waiting for a date, for the sweep that dates them
    # (``app.bundling.milestones.undated_clocks`` and ``date_waiting``).
    __table_args__ = (
        Index(
            "ix_milestones_undated",
            "due_from",
            "due_workdays",
            postgresql_where=text(UNDATED),
            sqlite_where=text(UNDATED),
        ),
    )

    plan_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("plans.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("help_requests.id", ondelete="SET NULL"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    title: Mapped[str] = mapped_column(String(200))  # Chinese
    title_en: Mapped[str] = mapped_column(String(200), default="", server_default="")
    owner_role: Mapped[str] = mapped_column(String(20), default="", server_default="")
    owner_provider_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("providers.id", ondelete="SET NULL"), index=True
    )
    owner: Mapped[str] = mapped_column(String(100), default="")
    due_date: Mapped[date | None] = mapped_column()
    # A generated step's clock: due ``due_workdays`` working days after ``due_from`` (the
    # local day its plan got the offer). Kept so a step dated "to be scheduled" (its day in a
    # year the holiday calendar did not know yet) is dated once the calendar knows it; None
    # for a coordinator's own steps and dates.
    due_from: Mapped[date | None] = mapped_column()
    due_workdays: Mapped[int | None] = mapped_column(Integer)
    done: Mapped[bool] = mapped_column(default=False)
    done_at: Mapped[datetime | None] = mapped_column()


class MilestoneTemplate(IdMixin, TimestampMixin, VersionMixin, Base):
    """The milestones a plan gets for each request of one category, in order.

    ``steps`` is a list of ``{"title_zh", "title_en", "owner": "provider" | "coordinator",
    "clock": "route" | "first_feedback" | "resolve", "after_days": n}``: a step falls due
    ``after_days`` working days after the category's named clock runs out, counted from the
    day the plan gets the request's offer (see :mod:`app.bundling.milestones`).
    """

    __tablename__ = "milestone_templates"

    category_key: Mapped[str] = mapped_column(
        String(40), ForeignKey("categories.key", ondelete="CASCADE"), unique=True
    )
    steps: Mapped[list[Any]] = mapped_column(JSON, default=list)


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
