from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, IdMixin, IdType, TimestampMixin, VersionMixin, str_enum
from app.models.enums import CategorySource, RequestStatus, Severity

if TYPE_CHECKING:
    from app.models.enterprise import Enterprise
    from app.models.plan import Plan


FILLFACTOR = 80  # percent of each PostgreSQL page filled by inserts


class HelpRequest(IdMixin, TimestampMixin, VersionMixin, Base):
    """A problem an enterprise needs help with (诉求)."""

    __tablename__ = "help_requests"
    __table_args__ = (
        CheckConstraint("urgency BETWEEN 1 AND 5", name="urgency_range"),
        CheckConstraint("providers_wanted BETWEEN 1 AND 5", name="providers_wanted_range"),
        Index(
            "ix_help_requests_rematch_requested_at",
            "rematch_requested_at",
            sqlite_where=text("rematch_requested_at IS NOT NULL"),
            postgresql_where=text("rematch_requested_at IS NOT NULL"),
        ),
        # Room on each page for a row's next version: a status move or a plan link is then a
        # heap-only update, no index touched (status and plan_id are deliberately unindexed:
        # app.bundling.repository.request_of_plans).
        {"postgresql_with": {"fillfactor": FILLFACTOR}},
    )

    enterprise_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    category: Mapped[str] = mapped_column(String(40), ForeignKey("categories.key"), index=True)
    category_source: Mapped[CategorySource] = mapped_column(
        str_enum(CategorySource, 10), default=CategorySource.GIVEN, server_default="given"
    )
    # Secondary categories (keys): the problem also touches them; a provider covering one
    # may be matched, at a lower skill fit than for the primary category.
    extra_categories: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    urgency: Mapped[int] = mapped_column(Integer, default=3)
    # A team: that many distinct providers serve the request (e.g. a lawyer and a financing
    # expert for one restructuring); MATCHED once all of them are offered.
    providers_wanted: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    severity: Mapped[Severity] = mapped_column(str_enum(Severity, 10), default=Severity.ORDINARY)
    wanted_by_date: Mapped[date | None] = mapped_column()
    status: Mapped[RequestStatus] = mapped_column(
        str_enum(RequestStatus, 20), default=RequestStatus.SUBMITTED
    )
    plan_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("plans.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column()
    # Set when a decline (or another reopening) leaves the request to be re-matched by the
    # worker (app.assignments.rematch_queue), which clears it in the transaction that writes
    # the offer; NULL otherwise. The partial index holds only the marked requests.
    # While the worker retries a re-match that failed, the mark holds the time of the next
    # attempt and this counts the failures (reset by a new mark and by a re-match that works).
    rematch_requested_at: Mapped[datetime | None] = mapped_column()
    rematch_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    enterprise: Mapped[Enterprise] = relationship(lazy="raise")
    plan: Mapped[Plan | None] = relationship(lazy="raise")

    @hybrid_property
    def rematch_pending(self) -> bool:
        """Its provider declined (or it was reopened) and the worker has yet to re-match it.

        A hybrid, so lists that read column rows rather than entities select the same answer
        as SQL (``rematch_requested_at IS NOT NULL``)."""
        return self.rematch_requested_at is not None

    @rematch_pending.inplace.expression
    @classmethod
    def _rematch_pending_expression(cls) -> ColumnElement[bool]:
        return cls.rematch_requested_at.is_not(None)
