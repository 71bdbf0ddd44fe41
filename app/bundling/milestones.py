"""Milestones from the categories' templates, for a whole publish at once.

A request gets its category's steps the first time the plan holding it has an open offer for
it (publish, a re-match, an assignment by hand): owned by that offer's provider, or by the
coordinator for coordination steps, and due on the category's working-day clocks counted
from today's local date. Everything is read in a handful of queries for every plan of the
publish and written with executemany batches, never an ORM object per row.

Due dates beyond the holiday calendar's known years: the step is still created, with no due
date (``None``, shown as "to be scheduled"), rather than a guessed date or a failed publish;
:func:`app.common.workdays.due_date_if_known` decides, and a calendar error there too
(``now`` itself past the known years) is treated the same way.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    String,
    Table,
    bindparam,
    case,
    exists,
    false,
    func,
    insert,
    literal,
    null,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.bundling import repository, summaries
from app.common import clock
from app.common.idsets import in_ids
from app.common.workdays import due_date_if_known
from app.errors import CalendarUnavailable
from app.events import service as event_service
from app.models import (
    REQUEST_CLOSED,
    Assignment,
    Category,
    Enterprise,
    HelpRequest,
    Milestone,
    Plan,
    Provider,
    Severity,
)
from app.taxonomy import templates as template_service

COORDINATOR_LABEL = "协调员"
BATCH = 2000


@dataclass(frozen=True)
class Helper:
    """The provider holding a request's open assignment (the lowest-id one if several)."""

    request_id: int
    plan_id: int
    category: str
    severity: Severity
    provider_id: int
    provider_name: str


def _table() -> Table:
    table = Milestone.__table__
    assert isinstance(table, Table)  # one table per model
    return table


def helpers(session: Session, owners: Mapping[int, int]) -> dict[int, Helper]:
    """request id → who holds its open assignment, for every unsettled request of the plans
    ``owners`` maps (plan id → its enterprise's id)."""
    rows = session.execute(
        select(
            HelpRequest.id,
            HelpRequest.plan_id,
            HelpRequest.category,
            HelpRequest.severity,
            Assignment.provider_id,
            Provider.name,
        )
        .join(Assignment, Assignment.request_id == HelpRequest.id)
        .join(Provider, Provider.id == Assignment.provider_id)
        .where(
            repository.request_of_plans(session, owners),
            HelpRequest.status.not_in(REQUEST_CLOSED),
            repository.open_assignment(),
        )
        .order_by(HelpRequest.id, Assignment.id)
    )
    found: dict[int, Helper] = {}
    for request_id, plan_id, category, severity, provider_id, name in rows:
        if plan_id is None:
            continue
        found.setdefault(
            request_id, Helper(request_id, plan_id, category, severity, provider_id, name)
        )
    return found


class DueDates:
    """Working-day due dates from one start date, memoised: a publish of thousands of
    requests uses a few dozen distinct day counts."""

    def __init__(self, start: date, now: datetime) -> None:
        self.start, self.now = start, now
        self._known: dict[int, date | None] = {}

    def after(self, days: int) -> date | None:
        if days not in self._known:
            try:
                self._known[days] = due_date_if_known(self.start, days, self.now)
            except CalendarUnavailable:
                self._known[days] = None  # "to be scheduled": never fail a publish on it
        return self._known[days]


def _clock_days(category: Category, which: str, severity: Severity) -> int:
    if which == "route":
        return category.route_days
    if which == "first_feedback":
        return category.first_feedback_days
    if severity == Severity.MAJOR:
        return category.resolve_days_major
    return category.resolve_days_ordinary


STEP_COLUMNS = (
    "category", "severity", "position", "title", "title_en", "owner_role", "due_workdays",
    "due_date",
)  # fmt: skip


def _step_rows(
    categories: dict[str, Category], steps: dict[str, list[dict[str, Any]]], due: DueDates
) -> list[tuple[str, str, int, str, str, str, int, date | None]]:
    """Every (category, severity) → its steps with their due dates: a few dozen rows however
    many requests the publish has."""
    rows = []
    for key, category in sorted(categories.items()):
        for severity in Severity:
            floor = 0
            for position, step in enumerate(steps.get(key, [])):
                days = _clock_days(category, step["clock"], severity) + step["after_days"]
                floor = max(floor, days)  # a later step is never due before an earlier one
                rows.append(
                    (
                        key,
                        severity.value,
                        position,
                        step["title_zh"],
                        step["title_en"],
                        step["owner"],
                        floor,
                        due.after(floor),
                    )
                )
    return rows


def _step_table(
    session: Session,
    categories: dict[str, Category],
    steps: dict[str, list[dict[str, Any]]],
    due: DueDates,
) -> Any:
    """The step rows as a table in the statement. PostgreSQL ``unnest``s seven arrays: the
    ``UNION ALL`` of literal rows it replaced was a statement of a few hundred arms that
    PostgreSQL planned and psycopg parsed anew each time, ~0.1 s per call, paid once per
    batch when the worker prepares a deferred publish.

    SQLite reads one JSON list with ``json_each``, as a ``MATERIALIZED`` common table
    expression: the same statement text whatever the steps (the ``UNION ALL`` was compiled
    anew for each set of categories, ~40 ms of every re-match drain's CPU), and a table
    SQLite indexes on the fly for the join (left inline, the join re-extracted each step's
    JSON once per request: 1.9 s instead of 0.06 s for 10k requests × 360 steps)."""
    rows = _step_rows(categories, steps, due)
    if session.get_bind().dialect.name == "postgresql":
        types = (String(), String(), Integer(), String(), String(), String(), Integer(), Date())
        unnested = (
            func.unnest(
                *(
                    bindparam(None, [row[i] for row in rows], type_=ARRAY(types[i]))
                    for i in range(len(STEP_COLUMNS))
                )
            )
            .table_valued(*STEP_COLUMNS)
            .render_derived(name="steps")
        )
        return unnested
    document = json.dumps(
        [(*row[:-1], row[-1].isoformat() if row[-1] else None) for row in rows],
        ensure_ascii=False,
    )  # dates as SQLAlchemy's SQLite ``Date`` stores them: ISO text
    listed = func.json_each(bindparam(None, document, type_=String())).table_valued("value")
    return (
        select(
            *(
                func.json_extract(listed.c.value, f"$[{i}]").label(name)
                for i, name in enumerate(STEP_COLUMNS)
            )
        )
        .select_from(listed)
        .cte("steps")
        .prefix_with("MATERIALIZED")  # SQLite 3.35+, as RETURNING (used throughout) is
    )


COLUMNS = (
    "plan_id", "request_id", "position", "title", "title_en", "owner_role",
    "owner_provider_id", "owner", "due_date", "due_from", "due_workdays", "done", "version",
    "created_at", "updated_at",
)  # fmt: skip


def _helpers_table(session: Session, todo: list[Helper]) -> tuple[Any, dict[str, Any]]:
    """The helpers already read, as a table in the statement: PostgreSQL ``unnest``s six
    arrays, SQLite reads one JSON list with ``json_each`` (as the outer loop, the steps then
    found through an automatic index). Returns the table and its columns by name."""
    names = ("request_id", "plan_id", "category", "severity", "provider_id", "owner")
    rows = [
        (
            h.request_id,
            h.plan_id,
            h.category,
            h.severity.value,
            h.provider_id,
            h.provider_name[:100],
        )
        for h in todo
    ]
    if session.get_bind().dialect.name == "postgresql":
        ids, texts = ARRAY(BigInteger()), ARRAY(String())
        unnested = (
            func.unnest(
                *(
                    bindparam(
                        None, [row[i] for row in rows], type_=texts if i in (2, 3, 5) else ids
                    )
                    for i in range(len(names))
                )
            )
            .table_valued(*names)
            .render_derived(name="helpers")
        )
        return unnested, {name: unnested.c[name] for name in names}
    document = json.dumps(rows, ensure_ascii=False)
    listed = func.json_each(bindparam(None, document, type_=String())).table_valued("value")
    listed = listed.alias("helpers")
    return listed, {
        name: func.json_extract(listed.c.value, f"$[{i}]") for i, name in enumerate(names)
    }


def _insert_steps(session: Session, todo: list[Helper], steps: Any, start: date) -> None:
    """One ``INSERT ... SELECT``: each request × its category's steps, owned by the provider
    of its first open assignment (the coordinator for coordination steps), in request then
    step order (a plan summary's next step breaks ties by milestone id).

    The requests, plans, categories and providers come from the helpers already read, not
    from the tables again: looking up each request's first open assignment and provider cost
    two index probes per request × step (15,675 rows in a 10k publish), ~260 ms of the
    statement on PostgreSQL, and SQLite scanned the step list once per request."""
    table = _table()
    now = literal(clock.utc_now(), table.c.created_at.type)
    helpers, c = _helpers_table(session, todo)
    by_provider = steps.c.owner_role == "provider"
    source = (
        select(
            c["plan_id"],
            c["request_id"],
            steps.c.position,
            steps.c.title,
            steps.c.title_en,
            steps.c.owner_role,
            case((by_provider, c["provider_id"]), else_=null()),
            case((by_provider, c["owner"]), else_=COORDINATOR_LABEL),
            steps.c.due_date,
            literal(start, Date()),
            steps.c.due_workdays,
            false(),
            literal(1, Integer),
            now,
            now,
        )
        .select_from(helpers)
        .join(steps, (steps.c.category == c["category"]) & (steps.c.severity == c["severity"]))
        .order_by(c["request_id"], steps.c.position)
    )
    session.execute(insert(table).from_select(COLUMNS, source))


def generate(session: Session, found: dict[int, Helper]) -> dict[int, int]:
    """Create the template milestones of every request in ``found`` that has none yet, in
    one statement; returns plan id → how many were added."""
    if not found:
        return {}
    has_any = set(
        session.scalars(
            select(Milestone.request_id).where(in_ids(Milestone.request_id, list(found))).distinct()
        )
    )
    todo = [h for r, h in sorted(found.items()) if r not in has_any]
    keys = {h.category for h in todo}
    steps = template_service.steps_by_category(session, keys)
    todo = [h for h in todo if steps.get(h.category)]
    if not todo:
        return {}
    categories = {c.key: c for c in session.scalars(select(Category).where(Category.key.in_(keys)))}
    due = DueDates(clock.today(), clock.utc_now())
    _insert_steps(session, todo, _step_table(session, categories, steps, due), due.start)
    added: dict[int, int] = defaultdict(int)
    for helper in todo:
        added[helper.plan_id] += len(steps[helper.category])
    return dict(added)


def hand_over(session: Session, found: dict[int, Helper]) -> int:
    """Open provider steps follow the request to its current provider (after a decline,
    an expiry or a re-assignment); returns how many changed hands."""
    if not found:
        return 0
    rows = session.execute(
        select(Milestone.id, Milestone.request_id, Milestone.owner_provider_id).where(
            in_ids(Milestone.request_id, list(found)),
            Milestone.owner_role == "provider",
            Milestone.done.is_(False),
        )
    )
    changes = [
        {"b_id": m, "b_provider": found[r].provider_id, "b_owner": found[r].provider_name[:100]}
        for m, r, owner in rows
        if r is not None and owner != found[r].provider_id
    ]
    table = _table()
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            owner_provider_id=bindparam("b_provider"),
            owner=bindparam("b_owner"),
            version=table.c.version + 1,
            updated_at=clock.utc_now(),
        )
    )
    for start in range(0, len(changes), BATCH):
        session.connection().execute(statement, changes[start : start + BATCH])
    return len(changes)


def is_serving(session: Session, provider_id: int, request_id: int | None) -> bool:
    """Whether the provider holds an open assignment on the request (it owns its steps)."""
    if request_id is None:
        return False
    return bool(
        session.scalar(
            select(
                exists().where(
                    Assignment.request_id == request_id,
                    Assignment.provider_id == provider_id,
                    repository.open_assignment(),
                )
            )
        )
    )


def undated_clocks(session: Session) -> list[tuple[date, int]]:
    """The distinct clocks (start day, working days) of generated steps still without a
    date: a few dozen however many steps wait, read from the partial index of those steps."""
    rows = session.execute(UNDATED_CLOCKS)
    return [(start, days) for start, days in rows if start is not None and days is not None]


# A generated step still waiting for its date: ``ix_milestones_undated``'s own condition.
UNDATED = (Milestone.due_date.is_(None), Milestone.due_workdays.is_not(None))

UNDATED_CLOCKS = (
    select(Milestone.due_from, Milestone.due_workdays)
    .where(*UNDATED)
    .group_by(Milestone.due_from, Milestone.due_workdays)
    .order_by(Milestone.due_from, Milestone.due_workdays)
)  # its WHERE is ``ix_milestones_undated``'s: the index answers it alone


def datable(clocks: list[tuple[date, int]], now: datetime) -> dict[tuple[date, int], date]:
    """Those clocks whose day the holiday calendar can now tell, with that day."""
    found: dict[tuple[date, int], date] = {}
    for start, days in clocks:
        try:
            day = due_date_if_known(start, days, now)
        except CalendarUnavailable:
            continue  # still a year nobody has told us the holidays of
        if day is not None:
            found[(start, days)] = day
    return found


def date_waiting(
    session: Session,
    days_by_clock: Mapping[tuple[date, int], date],
    *,
    after: int | None,
    limit: int,
) -> tuple[int, int | None]:
    """Date up to ``limit`` undated steps with one of those clocks, past step id ``after``:
    returns how many were dated and the last id read, or None when no more can be left.

    A step is dated only if it is still undated with that clock when written (a coordinator
    who set a date meanwhile keeps theirs). Each plan's audit trail says which of its steps
    got which date, and its summary is refreshed ("date to be set" becomes the date)."""
    table = _table()
    clock_of = tuple_(table.c.due_from, table.c.due_workdays)
    page = select(
        table.c.id, table.c.plan_id, table.c.due_from, table.c.due_workdays, Enterprise.region_code
    ).join(Plan, Plan.id == table.c.plan_id)
    page = page.join(Enterprise, Enterprise.id == Plan.enterprise_id).where(
        *UNDATED, clock_of.in_(list(days_by_clock))
    )
    if after is not None:
        page = page.where(table.c.id > after)
    rows = session.execute(page.order_by(table.c.id).limit(limit)).all()
    if not rows:
        return 0, None
    by_clock: dict[tuple[date, int], list[int]] = defaultdict(list)
    for row in rows:
        by_clock[(row.due_from, row.due_workdays)].append(row.id)
    dated: set[int] = set()
    now = clock.utc_now()
    for (start, days), ids in by_clock.items():  # few: ids run in the order steps were made
        moved = session.execute(
            update(table)
            .where(
                in_ids(table.c.id, ids),
                *UNDATED,
                table.c.due_from == start,
                table.c.due_workdays == days,
            )
            .values(
                due_date=days_by_clock[(start, days)],
                version=table.c.version + 1,
                updated_at=now,
            )
            .returning(table.c.id)
        )
        dated.update(moved.scalars())
    by_plan: dict[int, dict[str, str]] = defaultdict(dict)
    regions: dict[int, str] = {}
    for row in rows:
        if row.id in dated:
            day = days_by_clock[(row.due_from, row.due_workdays)]
            by_plan[row.plan_id][str(row.id)] = day.isoformat()
            regions[row.plan_id] = row.region_code
    event_service.record_many(
        session,
        actor=None,
        changes=(
            event_service.Change(
                action="plan.milestones_scheduled",
                entity_type="plans",
                entity_id=plan_id,
                region_code=regions[plan_id],
                after={"due_dates": due_dates},
            )
            for plan_id, due_dates in sorted(by_plan.items())
        ),
    )
    summaries.refresh(session, sorted(by_plan))
    return len(dated), rows[-1].id if len(rows) == limit else None
