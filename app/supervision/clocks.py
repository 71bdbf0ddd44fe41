"""Deadlines from the per-category "13710" clocks, and who is overdue against them.

Clocks run in working days by the official holiday calendar (:mod:`app.common.workdays`):
a clock started on local date *d* with *n* days falls due at the end of the *n*-th working
day after *d*, local time; it escalates once a second period has passed the same way.

Everything is computed from rows in Python (date arithmetic is not portable SQL); the queries
only narrow to what is still open, so a sweep costs a few queries whatever the backlog.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from app.assignments.transitions import OPEN
from app.common.clock import as_utc
from app.common.workdays import due_date_if_known, end_of_day, local_date
from app.enterprises.repository import region_clause
from app.models import (
    Assignment,
    AssignmentStatus,
    Category,
    Enterprise,
    FollowUp,
    HelpRequest,
    Provider,
    RequestStatus,
    Severity,
)

Regions = tuple[str, ...] | None
_Rows = TypeVar("_Rows", bound=Select[*tuple[Any, ...]])

UNSETTLED = (
    RequestStatus.SUBMITTED,
    RequestStatus.TRIAGED,
    RequestStatus.MATCHED,
    RequestStatus.IN_PROGRESS,
)


@dataclass(frozen=True)
class Overdue:
    """One item past its deadline. ``level`` 1 is a reminder, 2 an escalation (late by a
    whole clock period again)."""

    kind: str  # offer | first_follow_up | unrouted | unresolved
    request_id: int
    enterprise_id: int
    region_code: str
    category: str
    due_at: datetime
    due_date: date  # the local date the clock ran out (what users are shown)
    overdue_hours: float
    level: int
    assignment_id: int | None = None
    provider_id: int | None = None


def _overdue(kind: str, start: datetime, days: int, now: datetime, **ids: Any) -> Overdue | None:
    """``None`` unless the ``days``-working-day clock started at ``start`` has run out."""
    due_date = due_date_if_known(local_date(as_utc(start)), days, now)
    if due_date is None:
        return None
    due = end_of_day(due_date)
    if due >= now:
        return None
    escalate_date = due_date_if_known(due_date, days, now)
    return Overdue(
        kind=kind,
        due_at=due,
        due_date=due_date,
        overdue_hours=round((now - due).total_seconds() / 3600, 1),
        level=2 if escalate_date is not None and now >= end_of_day(escalate_date) else 1,
        **ids,
    )


def _offer_overdue(due: datetime, period: float, now: datetime, **ids: Any) -> Overdue | None:
    """Offers expire by the hour (their TTL), not by working days."""
    due = as_utc(due)
    if due >= now:
        return None
    late = (now - due).total_seconds()
    return Overdue(
        kind="offer",
        due_at=due,
        due_date=local_date(due),
        overdue_hours=round(late / 3600, 1),
        level=2 if late >= period else 1,
        **ids,
    )


def _scoped(statement: _Rows, regions: Regions) -> _Rows:
    """``regions`` None means everywhere (admins, the sweep); otherwise code prefixes."""
    if regions is None:
        return statement
    return statement.where(region_clause(Enterprise.region_code, regions))


def _request_rows(session: Session, regions: Regions) -> Select[HelpRequest, str, Category]:
    statement = (
        select(HelpRequest, Enterprise.region_code, Category)
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .join(Category, Category.key == HelpRequest.category)
        .where(HelpRequest.status.in_(UNSETTLED))
    )
    return _scoped(statement, regions)


def overdue_requests(session: Session, now: datetime, regions: Regions = None) -> Iterator[Overdue]:
    """Unrouted (no open offer within ``route_days``) and unresolved (past the resolve clock)."""
    has_open = exists().where(Assignment.request_id == HelpRequest.id, Assignment.status.in_(OPEN))
    rows = session.execute(_request_rows(session, regions).add_columns(has_open)).all()
    for request, region_code, category, routed in rows:
        ids = {
            "request_id": request.id,
            "enterprise_id": request.enterprise_id,
            "region_code": region_code,
            "category": request.category,
        }
        if not routed:
            found = _overdue("unrouted", request.created_at, category.route_days, now, **ids)
            if found:
                yield found
        days = (
            category.resolve_days_major
            if request.severity == Severity.MAJOR
            else category.resolve_days_ordinary
        )
        found = _overdue("unresolved", request.created_at, days, now, **ids)
        if found:
            yield found


def _assignment_rows(
    status: AssignmentStatus, regions: Regions
) -> Select[Assignment, HelpRequest, str, Category]:
    statement = (
        select(Assignment, HelpRequest, Enterprise.region_code, Category)
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .join(Category, Category.key == HelpRequest.category)
        .where(Assignment.status == status)
    )
    return _scoped(statement, regions)


def overdue_offers(session: Session, now: datetime, regions: Regions = None) -> Iterator[Overdue]:
    for assignment, request, region_code, _category in session.execute(
        _assignment_rows(AssignmentStatus.OFFERED, regions)
    ).all():
        if assignment.offer_expires_at is None or assignment.offered_at is None:
            continue
        period = as_utc(assignment.offer_expires_at) - as_utc(assignment.offered_at)
        found = _offer_overdue(
            assignment.offer_expires_at,
            period.total_seconds(),
            now,
            request_id=request.id,
            enterprise_id=request.enterprise_id,
            region_code=region_code,
            category=request.category,
            assignment_id=assignment.id,
            provider_id=assignment.provider_id,
        )
        if found:
            yield found


def overdue_first_follow_ups(
    session: Session, now: datetime, regions: Regions = None
) -> Iterator[Overdue]:
    """Accepted work with no follow-up logged within ``first_feedback_days``."""
    logged = exists().where(FollowUp.assignment_id == Assignment.id)
    statement = _assignment_rows(AssignmentStatus.ACCEPTED, regions).where(~logged)
    for assignment, request, region_code, category in session.execute(statement).all():
        start = assignment.responded_at or assignment.updated_at
        found = _overdue(
            "first_follow_up",
            start,
            category.first_feedback_days,
            now,
            request_id=request.id,
            enterprise_id=request.enterprise_id,
            region_code=region_code,
            category=request.category,
            assignment_id=assignment.id,
            provider_id=assignment.provider_id,
        )
        if found:
            yield found


AGE_BUCKETS = (("<1d", 1), ("1-3d", 3), ("3-7d", 7), ("7-30d", 30), (">30d", None))


def ageing(session: Session, now: datetime, regions: Regions = None) -> dict[str, int]:
    """Open requests by age: the backlog shape a coordinator watches."""
    counts = {name: 0 for name, _ in AGE_BUCKETS}
    statement = _scoped(
        select(HelpRequest.created_at)
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .where(HelpRequest.status.in_(UNSETTLED)),
        regions,
    )
    for created in session.scalars(statement):
        age_days = (now - as_utc(created)).total_seconds() / 86400
        name = next(n for n, limit in AGE_BUCKETS if limit is None or age_days < limit)
        counts[name] += 1
    return counts


@dataclass(frozen=True)
class PausedWork:
    """Accepted or active work whose provider is paused today: it keeps its slot, but the
    coordinator should know (a pause releases only unanswered offers)."""

    assignment_id: int
    request_id: int
    provider_id: int
    status: str
    region_code: str
    paused_until_date: date | None


def paused_work(session: Session, on: date, regions: Regions = None) -> list[PausedWork]:
    paused = (
        (Provider.paused_from_date.is_not(None) | Provider.paused_until_date.is_not(None))
        & (Provider.paused_from_date.is_(None) | (Provider.paused_from_date <= on))
        & (Provider.paused_until_date.is_(None) | (Provider.paused_until_date >= on))
    )
    statement = (
        select(Assignment, Enterprise.region_code, Provider.paused_until_date)
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .join(Provider, Provider.id == Assignment.provider_id)
        .where(Assignment.status.in_((AssignmentStatus.ACCEPTED, AssignmentStatus.ACTIVE)), paused)
        .order_by(Assignment.id)
    )
    return [
        PausedWork(a.id, a.request_id, a.provider_id, a.status.value, region, until)
        for a, region, until in session.execute(_scoped(statement, regions)).all()
    ]
