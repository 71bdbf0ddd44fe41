"""What ``/stats`` needs to know of one request, kept up to date by the database itself.

Why: ``/stats`` reduces every request in scope to a few figures, and on SQLite grouping
each request's offers, feedback and follow-ups again on every call cost 0.35-0.55 s CPU at
province scale (150k requests). These rows hold those per-request facts (first offer, ever
accepted, any follow-up, the offers' answer and rating tallies) beside the request's own
group keys (region and tier of its enterprise, category) and timestamps, so a call reads
one narrow table without a join. On PostgreSQL the table stays empty: /stats reads the
source tables there (its grouped pass over the offers is fast, GROUPING SETS), and triggers
would cost its writes (+0.2 s per 10k published offers, measured) for facts nothing reads.

On SQLite they are maintained by triggers (migration ``request_facts``), in the transaction of every
write that changes them, whatever the write path (ORM flush, bulk statement, cascade): no
use case has to remember them. SQLite's triggers run per row inside the engine. Nothing
else writes here.

A later migration that rebuilds one of the source tables on SQLite (Alembic's batch mode
copies a table and drops the old one) drops that table's triggers with it and must create
them again; tests/app/test_request_facts.py fails if the facts drift from their sources.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdType


class RequestFacts(Base):
    """One row per help request; read-only for the application (see the module docstring)."""

    __tablename__ = "request_facts"

    request_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("help_requests.id", ondelete="CASCADE"), primary_key=True
    )
    # The request's enterprise's region code and tier, and its own category, status and times.
    region_code: Mapped[str] = mapped_column(String(6))
    tier: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    # Over all its assignments: the first offer; 1 if one was ever accepted (see
    # app/stats/repository.py, _answered_yes), 1 if one has a follow-up logged against it.
    first_offered_at: Mapped[datetime | None] = mapped_column()
    accepted: Mapped[int] = mapped_column(Integer, server_default="0")
    followed_up: Mapped[int] = mapped_column(Integer, server_default="0")
    # Over its offers (assignments with offered_at): answered yes, answered no, feedback
    # given, the ratings' sum and how many were satisfied.
    answered_yes: Mapped[int] = mapped_column(Integer, server_default="0")
    answered_no: Mapped[int] = mapped_column(Integer, server_default="0")
    feedback: Mapped[int] = mapped_column(Integer, server_default="0")
    rating_sum: Mapped[int] = mapped_column(Integer, server_default="0")
    satisfied: Mapped[int] = mapped_column(Integer, server_default="0")
