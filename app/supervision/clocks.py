"""Deadlines from the per-category "13710" clocks, and who is overdue against them.

Clocks run in working days by the official holiday calendar (:mod:`app.common.workdays`):
a clock started on local date *d* with *n* days falls due at the end of the *n*-th working
day after *d*, local time; it escalates once a second period has passed the same way.

Date arithmetic over a holiday calendar is not portable SQL, but it need not run per row.
The due date grows with the start date, so for each clock length *n* there is one last
start date whose clock has run out by today (:func:`last_late_start`); "overdue" is then
``started_at < end of that day``, an indexed range filter evaluated in SQL, grouped by the
few distinct clock lengths of the categories. The calendar is consulted only for the days
between that start and today (cached per day and length), and for the rows of the page
being shown. A category whose clock an admin changes is seen by the next query: nothing is
stored per row, so nothing goes stale. Every list is keyset-paged with its total, so the
board costs a few counted queries at any backlog (one board once answered 8,749 items).

At the exact instant of local midnight an item due that day counts as late a microsecond
early; nothing else differs from comparing each row's due moment with ``now``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    and_,
    case,
    exists,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from app.assignments.transitions import OPEN
from app.common.clock import as_utc
from app.common.pagination import PageParams, encode_cursor
from app.common.regions import region_clause
from app.common.schemas import Page
from app.common.workdays import (
    calendar_source,
    due_date_if_known,
    end_of_day,
    is_working_day,
    local_date,
)
from app.models import (
    REQUEST_OPEN,
    Assignment,
    AssignmentStatus,
    Category,
    Enterprise,
    FollowUp,
    HelpRequest,
    Provider,
    Severity,
)

Regions = tuple[str, ...] | None
AnySelect = TypeVar("AnySelect", bound="Select[*tuple[Any, ...]]")

REQUEST_KINDS = ("unrouted", "unresolved")  # one request can be both: keys interleave them
WALK = 500  # rows per query when a caller walks a whole list (the one-transaction sweep)


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

    @property
    def key(self) -> int:
        """The item's place in its list, what the cursor carries: the assignment for offers
        and follow-ups; request and kind for requests (a request can be late twice)."""
        if self.assignment_id is not None:
            return self.assignment_id
        return self.request_id * len(REQUEST_KINDS) + REQUEST_KINDS.index(self.kind)


# --- the cut-off: one calendar walk per clock length and day ------------------------------


def last_late_start(today: date, days: int) -> date:
    """The last local start date whose ``days``-working-day clock ran out before ``today``.

    A clock started on *s* is due on the ``days``-th working day after *s*; it is late
    today when that day is before today, that is when (s, today) holds at least ``days``
    working days. Walking *s* back from yesterday and counting the working days passed gives
    the largest such *s*; every earlier start is late too (the due date never decreases).
    Only days before today are read, so this raises
    :class:`~app.errors.CalendarUnavailable` only when today itself lies in a year the
    calendar does not know — where no clock can honestly be judged.
    """
    return _last_late_start(today, days, calendar_source())


@lru_cache(maxsize=1024)
def _last_late_start(today: date, days: int, _source: Path | None) -> date:
    start, counted = today - timedelta(days=1), 0
    while counted < days:
        counted += is_working_day(start)
        start -= timedelta(days=1)
    return start


def late_before(today: date, days: int) -> datetime:
    """Clocks of ``days`` started before this moment have run out by ``today``."""
    return end_of_day(last_late_start(today, days))


def _started_late(
    started: SQLColumnExpression[datetime], category_days: Mapping[str, int], today: date
) -> ColumnElement[bool]:
    """``started`` is before the cut-off of its category's clock length: one range filter
    per distinct length (a handful), whatever the number of categories or rows."""
    by_days: dict[int, list[str]] = defaultdict(list)
    for key, days in category_days.items():
        by_days[days].append(key)
    terms = [
        and_(HelpRequest.category.in_(sorted(keys)), started < late_before(today, days))
        for days, keys in sorted(by_days.items())
    ]
    return or_(*terms) if terms else false()


@dataclass(frozen=True)
class CategoryClocks:
    """The clock lengths of every category, read once per query (the table is small)."""

    route: dict[str, int]
    first_feedback: dict[str, int]
    resolve_ordinary: dict[str, int]
    resolve_major: dict[str, int]

    @classmethod
    def read(cls, session: Session) -> CategoryClocks:
        rows = session.execute(
            select(
                Category.key,
                Category.route_days,
                Category.first_feedback_days,
                Category.resolve_days_ordinary,
                Category.resolve_days_major,
            )
        ).all()
        return cls(
            route={r[0]: r[1] for r in rows},
            first_feedback={r[0]: r[2] for r in rows},
            resolve_ordinary={r[0]: r[3] for r in rows},
            resolve_major={r[0]: r[4] for r in rows},
        )

    def resolve_days(self, category: str, severity: Severity | str) -> int:
        table = self.resolve_major if severity == Severity.MAJOR else self.resolve_ordinary
        return table[category]


# --- the three lists as SQL filters ---------------------------------------------------------


def _scoped(statement: AnySelect, regions: Regions) -> AnySelect:
    """``regions`` None means everywhere (admins, the sweep); otherwise code prefixes."""
    if regions is None:
        return statement
    return statement.where(region_clause(Enterprise.region_code, regions))


def _request_conditions(
    clocks: CategoryClocks, today: date, *, every_row: bool = False
) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """(unrouted, unresolved): no open offer within ``route_days``; not settled within the
    resolve clock of its severity.

    A page tests few rows, and probes the open offers per row; a count (``every_row``)
    tests every open request of the scope, and reads the open offers once into a set
    instead (the same test, as ``request_id`` is never NULL): 70k index probes made the
    count most of a cold board at province scale, and their estimated cost woke
    PostgreSQL's JIT compiler (~0.1 s per call)."""
    has_open: ColumnElement[bool]
    if every_row:
        has_open = HelpRequest.id.in_(
            select(Assignment.request_id).where(Assignment.status.in_(OPEN))
        )
    else:
        has_open = exists().where(
            Assignment.request_id == HelpRequest.id, Assignment.status.in_(OPEN)
        )
    started = HelpRequest.created_at
    unrouted = and_(~has_open, _started_late(started, clocks.route, today))
    unresolved = or_(
        and_(
            HelpRequest.severity == Severity.MAJOR,
            _started_late(started, clocks.resolve_major, today),
        ),
        and_(
            HelpRequest.severity != Severity.MAJOR,
            _started_late(started, clocks.resolve_ordinary, today),
        ),
    )
    return unrouted, unresolved


def _open_requests(regions: Regions, *columns: Any, region_code: bool = True) -> Select[Any]:
    """Open requests; the enterprise is joined for a region scope or its region code only."""
    statement = (
        select(*columns).select_from(HelpRequest).where(HelpRequest.status.in_(REQUEST_OPEN))
    )
    if regions is None and not region_code:
        return statement
    statement = statement.join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
    return _scoped(statement, regions)


def _count(session: Session, statement: Select[Any]) -> int:
    counted = select(func.count()).select_from(statement.order_by(None).subquery())
    return int(session.scalar(counted) or 0)


def _following(items: list[Overdue], page: PageParams) -> Page[Overdue]:
    """The page out of ``items`` (ordered by key, at least one more than fits if more exist)."""
    after = page.after_id
    items = [i for i in items if after is None or i.key > after]
    chunk = items[: page.limit]
    more = len(items) > page.limit
    # Built as is: the items are ours, and the response model validates them once anyway.
    return Page[Overdue].model_construct(
        items=chunk, next_cursor=encode_cursor(chunk[-1].key) if more else None, total=None
    )


def requests_page(
    session: Session, now: datetime, regions: Regions, page: PageParams, *, count: bool = True
) -> Page[Overdue]:
    """Unrouted and unresolved requests, one page in key order, with the total."""
    clocks = CategoryClocks.read(session)
    unrouted, unresolved = _request_conditions(clocks, local_date(now))
    statement = _open_requests(
        regions,
        HelpRequest.id,
        HelpRequest.enterprise_id,
        HelpRequest.category,
        HelpRequest.severity,
        HelpRequest.created_at,
        Enterprise.region_code,
        case((unrouted, True), else_=False).label("unrouted"),
        case((unresolved, True), else_=False).label("unresolved"),
    ).where(or_(unrouted, unresolved))
    if page.after_id is not None:
        statement = statement.where(HelpRequest.id >= page.after_id // len(REQUEST_KINDS))
    # Each row gives one or two items, the first row maybe none past the cursor: two extra
    # rows always show whether another page follows.
    rows = session.execute(statement.order_by(HelpRequest.id).limit(page.limit + 2)).all()
    items: list[Overdue] = []
    for row in rows:
        ids = {
            "request_id": row.id,
            "enterprise_id": row.enterprise_id,
            "region_code": row.region_code,
            "category": row.category,
        }
        if row.unrouted:
            days = clocks.route[row.category]
            items.append(clock_item("unrouted", row.created_at, days, now, **ids))
        if row.unresolved:
            days = clocks.resolve_days(row.category, row.severity)
            items.append(clock_item("unresolved", row.created_at, days, now, **ids))
    found = _following(items, page)
    if count:
        every = _request_conditions(clocks, local_date(now), every_row=True)
        found.total = _late_requests(session, regions, *every)
    return found


def requests_total(session: Session, now: datetime, regions: Regions) -> int:
    """How many items :func:`requests_page` walks through in all."""
    clocks = CategoryClocks.read(session)
    unrouted, unresolved = _request_conditions(clocks, local_date(now), every_row=True)
    return _late_requests(session, regions, unrouted, unresolved)


def _late_requests(
    session: Session,
    regions: Regions,
    unrouted: ColumnElement[bool],
    unresolved: ColumnElement[bool],
) -> int:
    """Both kinds counted in one pass over the open requests."""

    def one_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    statement = _open_requests(regions, one_if(unrouted) + one_if(unresolved), region_code=False)
    return int(session.scalar(statement) or 0)


def _assignments(regions: Regions, status: AssignmentStatus, *columns: Any) -> Select[Any]:
    statement = (
        select(*columns)
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .where(Assignment.status == status)
    )
    return _scoped(statement, regions)


_ASSIGNMENT_COLUMNS = (
    Assignment.id,
    Assignment.provider_id,
    HelpRequest.id.label("request_id"),
    HelpRequest.enterprise_id,
    HelpRequest.category,
    Enterprise.region_code,
)


def _keyset(statement: Select[Any], page: PageParams) -> Select[Any]:
    if page.after_id is not None:
        statement = statement.where(Assignment.id > page.after_id)
    return statement.order_by(Assignment.id).limit(page.limit + 1)


def _late_offers(now: datetime, regions: Regions, *columns: Any) -> Select[Any]:
    late = and_(Assignment.offered_at.is_not(None), Assignment.offer_expires_at < now)
    return _assignments(regions, AssignmentStatus.OFFERED, *columns).where(late)


def offers_total(session: Session, now: datetime, regions: Regions) -> int:
    return _count(session, _late_offers(now, regions, Assignment.id))


def offers_page(
    session: Session, now: datetime, regions: Regions, page: PageParams, *, count: bool = True
) -> Page[Overdue]:
    """Offers past their deadline (a TTL in hours, stored on the row), with the total."""
    statement = _late_offers(
        now, regions, *_ASSIGNMENT_COLUMNS, Assignment.offered_at, Assignment.offer_expires_at
    )
    rows = session.execute(_keyset(statement, page)).all()
    items = [_offer_item(row, now) for row in rows]
    found = _following(items, page)
    if count:
        found.total = _count(session, statement)
    return found


_STARTED = func.coalesce(Assignment.responded_at, Assignment.updated_at)  # the clock's start


def _late_follow_ups(
    clocks: CategoryClocks, now: datetime, regions: Regions, *columns: Any
) -> Select[Any]:
    logged = exists().where(FollowUp.assignment_id == Assignment.id)
    late = _started_late(_STARTED, clocks.first_feedback, local_date(now))
    return _assignments(regions, AssignmentStatus.ACCEPTED, *columns).where(~logged, late)


def follow_ups_total(session: Session, now: datetime, regions: Regions) -> int:
    statement = _late_follow_ups(CategoryClocks.read(session), now, regions, Assignment.id)
    return _count(session, statement)


def follow_ups_page(
    session: Session, now: datetime, regions: Regions, page: PageParams, *, count: bool = True
) -> Page[Overdue]:
    """Accepted work with no follow-up logged within ``first_feedback_days``."""
    clocks = CategoryClocks.read(session)
    statement = _late_follow_ups(
        clocks, now, regions, *_ASSIGNMENT_COLUMNS, _STARTED.label("started")
    )
    rows = session.execute(_keyset(statement, page)).all()
    items = [
        clock_item(
            "first_follow_up",
            row.started,
            clocks.first_feedback[row.category],
            now,
            request_id=row.request_id,
            enterprise_id=row.enterprise_id,
            region_code=row.region_code,
            category=row.category,
            assignment_id=row.id,
            provider_id=row.provider_id,
        )
        for row in rows
    ]
    found = _following(items, page)
    if count:
        found.total = _count(session, statement)
    return found


# --- one page's rows described --------------------------------------------------------------


def clock_item(kind: str, start: datetime, days: int, now: datetime, **ids: Any) -> Overdue:
    """A row the SQL filter found late: its due date lies before today, so the calendar
    knows it; the escalation date may not be known yet, and then it has not come."""
    due_date = due_date_if_known(local_date(as_utc(start)), days, now)
    if due_date is None:  # only if the row changed since the filter read it
        due_date = local_date(now)
    due = end_of_day(due_date)
    escalate_date = due_date_if_known(due_date, days, now)
    return Overdue(
        kind=kind,
        due_at=due,
        due_date=due_date,
        overdue_hours=round(max((now - due).total_seconds(), 0.0) / 3600, 1),
        level=2 if escalate_date is not None and now >= end_of_day(escalate_date) else 1,
        **ids,
    )


def _offer_item(row: Any, now: datetime) -> Overdue:
    """Offers expire by the hour (their TTL), not by working days; a second TTL escalates."""
    due = as_utc(row.offer_expires_at)
    period = (due - as_utc(row.offered_at)).total_seconds()
    late = (now - due).total_seconds()
    return Overdue(
        kind="offer",
        due_at=due,
        due_date=local_date(due),
        overdue_hours=round(late / 3600, 1),
        level=2 if late >= period else 1,
        request_id=row.request_id,
        enterprise_id=row.enterprise_id,
        region_code=row.region_code,
        category=row.category,
        assignment_id=row.id,
        provider_id=row.provider_id,
    )


# --- whole lists, walked a page at a time ---------------------------------------------------


def _walk(
    pages: Any, session: Session, now: datetime, regions: Regions, size: int
) -> Iterator[Overdue]:
    after: int | None = None
    while True:
        found: Page[Overdue] = pages(session, now, regions, PageParams(size, after), count=False)
        yield from found.items
        if found.next_cursor is None:
            return
        after = found.items[-1].key


def overdue_offers(
    session: Session, now: datetime, regions: Regions = None, *, size: int = WALK
) -> Iterator[Overdue]:
    return _walk(offers_page, session, now, regions, size)


def overdue_first_follow_ups(
    session: Session, now: datetime, regions: Regions = None, *, size: int = WALK
) -> Iterator[Overdue]:
    return _walk(follow_ups_page, session, now, regions, size)


def overdue_requests(
    session: Session, now: datetime, regions: Regions = None, *, size: int = WALK
) -> Iterator[Overdue]:
    return _walk(requests_page, session, now, regions, size)


# --- the rest of the board ------------------------------------------------------------------

AGE_BUCKETS = (("<1d", 1), ("1-3d", 3), ("3-7d", 7), ("7-30d", 30), (">30d", None))


def ageing(session: Session, now: datetime, regions: Regions = None) -> dict[str, int]:
    """Open requests by age: the backlog shape a coordinator watches (one pass)."""
    bucket = case(
        *(
            (HelpRequest.created_at > now - timedelta(days=limit), name)
            for name, limit in AGE_BUCKETS
            if limit is not None
        ),
        else_=AGE_BUCKETS[-1][0],
    ).label("bucket")
    # One row of conditional counts over a subquery: grouped by the bucket, PostgreSQL
    # sorted every open request (it cannot tell the CASE has five values) and spilled to disk.
    aged = _open_requests(regions, bucket, region_code=False).subquery()
    counts = select(*(func.count(case((aged.c.bucket == name, 1))) for name, _ in AGE_BUCKETS))
    row = session.execute(counts).one()
    return {name: int(row[n]) for n, (name, _) in enumerate(AGE_BUCKETS)}


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


_PAUSED_COLUMNS: tuple[Any, ...] = (
    Assignment.id,
    Assignment.request_id,
    Assignment.provider_id,
    Assignment.status,
    Enterprise.region_code,
    Provider.paused_until_date,
)


def _paused_work(on: date, regions: Regions) -> Select[Any]:
    """Accepted or active work of providers paused on ``on``, in ``regions``."""
    paused: ColumnElement[bool] = (
        (Provider.paused_from_date.is_not(None) | Provider.paused_until_date.is_not(None))
        & (Provider.paused_from_date.is_(None) | (Provider.paused_from_date <= on))
        & (Provider.paused_until_date.is_(None) | (Provider.paused_until_date >= on))
    )
    statement = (
        select(*_PAUSED_COLUMNS)
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .join(Provider, Provider.id == Assignment.provider_id)
        .where(Assignment.status.in_((AssignmentStatus.ACCEPTED, AssignmentStatus.ACTIVE)), paused)
    )
    return _scoped(statement, regions)


def paused_total(session: Session, now: datetime, regions: Regions) -> int:
    return _count(session, _paused_work(local_date(now), regions))


def paused_page(
    session: Session, now: datetime, regions: Regions, page: PageParams, *, count: bool = True
) -> Page[PausedWork]:
    """Work of providers paused today (local date), in assignment order, with the total:
    keyset-paged like the overdue lists (a province's pause can hold thousands)."""
    statement = _paused_work(local_date(now), regions)
    rows = session.execute(_keyset(statement, page)).all()
    items = [
        PausedWork(
            r.id, r.request_id, r.provider_id, r.status.value, r.region_code, r.paused_until_date
        )
        for r in rows[: page.limit]
    ]
    more = len(rows) > page.limit
    found = Page[PausedWork](
        items=items, next_cursor=encode_cursor(items[-1].assignment_id) if more else None
    )
    if count:
        found.total = _count(session, statement)
    return found
