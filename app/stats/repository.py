"""The few aggregate queries behind ``/stats``; ``visible_to`` is the one place their scoping lives.

Everything is aggregated in SQL and only one row per group comes back: at province scale
(150k requests) shipping a row per request to Python and reducing it there took seconds.
Counts, sums and means are portable; the median and hours between timestamps come from
app/sqlfuncs.py. Every function is one query, whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    String,
    and_,
    case,
    distinct,
    exists,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import Label

from app.assignments.transitions import OPEN
from app.common.principal import Principal
from app.common.regions import region_clause
from app.models import (
    Assignment,
    AssignmentStatus,
    Enterprise,
    Feedback,
    FollowUp,
    HelpRequest,
    Provider,
    RequestFacts,
    RequestStatus,
)
from app.sqlfuncs import (
    hours_between,
    json_array_elements,
    json_has_key,
    median,
    median_of,
    median_values,
    merged_median,
)
from app.stats.schemas import GroupBy

YES = (AssignmentStatus.ACCEPTED, AssignmentStatus.ACTIVE, AssignmentStatus.COMPLETED)
NO = (AssignmentStatus.DECLINED, AssignmentStatus.EXPIRED)
SETTLED = (RequestStatus.RESOLVED, RequestStatus.UNRESOLVABLE)
BATCH = 1000  # groups fetched at a time when every group is streamed


@dataclass(frozen=True)
class Scope:
    """The region prefixes every number is computed over; ``None`` means everywhere."""

    prefixes: tuple[str, ...] | None

    def clause(self) -> ColumnElement[bool]:
        if self.prefixes is None:
            return true()
        return region_clause(Enterprise.region_code, self.prefixes)

    def serves(self, dialect: str) -> ColumnElement[bool]:
        """Whether a provider is supply for this scope, by the matching engine's hard rule:
        empty ``regions`` means anywhere, remote providers serve anywhere too; otherwise one
        of its regions lies under one of the scope's prefixes, or contains one."""
        if self.prefixes is None:
            return true()
        code = json_array_elements(Provider.regions, dialect)
        overlaps = [
            or_(func.substr(code.c.value, 1, len(p)) == p, code.c.value.in_(_heads(p)))
            for p in self.prefixes
        ]
        return or_(
            func.json_array_length(Provider.regions) == 0,
            Provider.remote_ok.is_(true()),
            exists().select_from(code).where(or_(false(), *overlaps)),
        )

    @property
    def everywhere(self) -> bool:
        return self.prefixes is None


def _heads(prefix: str) -> list[str]:
    """``prefix`` and every shorter code it starts with: a region containing the prefix."""
    return [prefix[:n] for n in range(1, len(prefix) + 1)]


def visible_to(principal: Principal, *, region: str | None = None) -> Scope:
    """Admins see everything, coordinators their regions, everyone else nothing.

    ``region`` narrows the scope; a region outside a coordinator's own yields an empty scope
    (the service refuses it with 403 before any query runs).
    """
    if not (principal.is_admin or principal.is_coordinator):
        return Scope(())
    if region is not None:
        return Scope((region,) if principal.covers_region(region) else ())
    return Scope(None if principal.is_admin else principal.region_prefixes)


@dataclass(frozen=True)
class StatsFilter:
    """Request-side filters; ``since <= created_at < until``, both timezone-aware UTC."""

    region: str | None = None
    category: str | None = None
    tier: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class OfferTally:
    """Additive per-group counts over offers, so the total is the sum of the groups."""

    answered_yes: int = 0
    answered_no: int = 0
    feedback: int = 0
    rating_sum: int = 0
    satisfied: int = 0

    def __add__(self, other: OfferTally) -> OfferTally:
        return OfferTally(
            self.answered_yes + other.answered_yes,
            self.answered_no + other.answered_no,
            self.feedback + other.feedback,
            self.rating_sum + other.rating_sum,
            self.satisfied + other.satisfied,
        )


@dataclass(frozen=True)
class Figures:
    """The request-side figures of one group, aggregated in the database.

    A request (or, grouped by provider, a request × provider pair) is one unit. Durations are
    in hours over the units that reached the step; medians and means are ``None`` without any.
    ``offers`` tallies the units' offers, counted in the same pass.
    """

    submitted: int = 0
    matched: int = 0
    accepted: int = 0
    followed_up: int = 0
    resolved: int = 0
    settled: int = 0
    match_count: int = 0
    match_median: float | None = None
    match_mean: float | None = None
    resolution_count: int = 0
    resolution_median: float | None = None
    resolution_mean: float | None = None
    offers: OfferTally = OfferTally()


@dataclass(frozen=True)
class LoadFigures:
    """Providers, their summed capacity and open assignments (offered, accepted, active)."""

    providers: int = 0
    capacity: int = 0
    open_assignments: int = 0


@dataclass(frozen=True)
class ProviderFigures:
    """One provider's figures over the pairs it was offered, with its name and load now."""

    figures: Figures
    name: str
    load: LoadFigures


def _needs_enterprise(scope: Scope, f: StatsFilter, group_by: GroupBy | None) -> bool:
    """Whether a statement must join ``Enterprise``: for the scope, the tier filter or a
    region/tier group key. Everywhere and ungrouped, the join (100k rows) is pure cost."""
    return not scope.everywhere or f.tier is not None or group_by in (GroupBy.REGION, GroupBy.TIER)


def _in_scope(
    statement: Any,
    scope: Scope,
    f: StatsFilter,
    group_by: GroupBy | None,
) -> Any:
    """``statement`` (whose FROM has ``HelpRequest``) narrowed to the scope and filters."""
    if _needs_enterprise(scope, f, group_by):
        statement = statement.join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
    return statement.where(*_conditions(scope, f))


def _conditions(scope: Scope, f: StatsFilter) -> list[ColumnElement[bool]]:
    """WHERE terms; they name ``Enterprise`` only when _needs_enterprise says so."""
    terms = [] if scope.everywhere else [scope.clause()]
    return terms + _filter_terms(
        f, category=HelpRequest.category, tier=Enterprise.tier, created=HelpRequest.created_at
    )


def _filter_terms(
    f: StatsFilter,
    *,
    category: SQLColumnExpression[Any],
    tier: SQLColumnExpression[Any],
    created: SQLColumnExpression[Any],
) -> list[ColumnElement[bool]]:
    """The filters' terms over whichever table holds the request's category, tier and time."""
    terms: list[ColumnElement[bool]] = []
    if f.category:
        terms.append(category == f.category)
    if f.tier:
        terms.append(tier == f.tier)
    if f.since:
        terms.append(created >= f.since)
    if f.until:
        terms.append(created < f.until)
    return terms


def _group_key(group_by: GroupBy | None) -> SQLColumnExpression[Any]:
    """The group key as SQL; ``provider`` needs ``Assignment`` in the FROM clause."""
    return _key_over(
        group_by,
        region=Enterprise.region_code,
        category=HelpRequest.category,
        tier=Enterprise.tier,
        provider=Assignment.provider_id,
    )


def _key_over(
    group_by: GroupBy | None,
    *,
    region: SQLColumnExpression[Any],
    category: SQLColumnExpression[Any],
    tier: SQLColumnExpression[Any],
    provider: SQLColumnExpression[Any] | None,
) -> SQLColumnExpression[Any]:
    """The group key over whichever table holds the request's region, category and tier
    (``provider=None``: a table with one row per request, which has no single provider)."""
    if group_by is GroupBy.REGION:  # literal bounds: the same text in SELECT and GROUP BY
        return func.substr(region, literal_column("1"), literal_column("4"))
    if group_by is GroupBy.CATEGORY:
        return category
    if group_by is GroupBy.TIER:
        return tier
    if group_by is GroupBy.PROVIDER:
        if provider is None:
            raise ValueError("a request has no single provider")
        return provider
    return null()


def _as_key(value: object) -> str | None:
    return None if value is None else str(value)


def _answered_yes() -> ColumnElement[bool]:
    """An offer was accepted if it is accepted/active/completed now, or was answered and
    later withdrawn or cancelled (``responded_at`` is set by accept and decline only)."""
    return or_(
        Assignment.status.in_(YES),
        and_(Assignment.responded_at.is_not(None), Assignment.status.not_in(NO)),
    )


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """1 when any row of the group meets ``condition`` (portable ``bool_or``)."""
    return func.max(case((condition, 1), else_=0))


def _followed_up() -> ColumnElement[bool]:
    logged = select(FollowUp.assignment_id).where(FollowUp.assignment_id.is_not(None))
    return Assignment.id.in_(logged)


def _tally_columns(offered: ColumnElement[bool]) -> list[Label[Any]]:
    """Answers and ratings over the rows (assignments joined to their feedback) that are
    offers; summed again per group, they are the group's :class:`OfferTally`."""
    return [
        func.sum(case((and_(offered, _answered_yes()), 1), else_=0)).label("yes"),
        func.sum(case((and_(offered, Assignment.status.in_(NO)), 1), else_=0)).label("no"),
        func.count(case((offered, Feedback.id), else_=null())).label("feedback"),
        func.sum(case((offered, Feedback.rating), else_=0)).label("rating_sum"),
        func.sum(case((and_(offered, Feedback.satisfied.is_(true())), 1), else_=0)).label(
            "satisfied"
        ),
    ]


def _per_request_offers(*, tallies: bool) -> Any:
    """First offer, ever-accepted and any-follow-up per request, over all its assignments
    (the facts that count a request once however many offers it had) and, with
    ``tallies``, the tally of its offers, for groups of requests to sum.

    Ungrouped, the tallies are summed straight over the offers instead
    (:func:`_offer_tallies`): five more aggregates per request made this grouping spill to
    disk on PostgreSQL and cost about a third of a province's cold total. Grouped, that
    second pass would join the requests and enterprises again, which costs more."""
    statement = select(
        Assignment.request_id.label("request_id"),
        func.min(Assignment.offered_at).label("first_offered_at"),
        _flag(_answered_yes()).label("accepted"),
        _flag(_followed_up()).label("followed_up"),
    )
    if tallies:
        statement = statement.add_columns(
            *_tally_columns(Assignment.offered_at.is_not(None))
        ).outerjoin(Feedback, Feedback.assignment_id == Assignment.id)
    return statement.group_by(Assignment.request_id).subquery("per_request")


TALLIES = ("yes", "no", "feedback", "rating_sum", "satisfied")


def _offer_tallies(scope: Scope, filters: StatsFilter, *, providers: bool) -> Any:
    """The offer tallies over the assignments of the requests in scope, in one row; with
    ``providers``, also how many distinct providers were offered one (the number of groups
    by provider). Reads ``help_requests`` only when the scope or a filter needs it."""
    offered = Assignment.offered_at.is_not(None)
    columns: list[Any] = _tally_columns(offered)
    if providers:
        provider = case((offered, Assignment.provider_id), else_=null())
        columns.append(func.count(distinct(provider)).label("offered_providers"))
    statement = (
        select(*columns)
        .select_from(Assignment)
        .outerjoin(Feedback, Feedback.assignment_id == Assignment.id)
    )
    if _needs_enterprise(scope, filters, None) or _conditions(scope, filters):
        statement = statement.join(HelpRequest, HelpRequest.id == Assignment.request_id)
        statement = _in_scope(statement, scope, filters, None)
    return statement.subquery("tallies")


def _grouped(statement: Any, group_by: GroupBy | None, *, grouping_sets: bool) -> Any:
    """``statement`` grouped by the key (and, with ``grouping_sets``, also in total)."""
    if grouping_sets:
        return statement.group_by(func.grouping_sets(tuple_(_group_key(group_by)), tuple_()))
    if group_by is not None:
        return statement.group_by(_group_key(group_by))
    return statement


def _figures(
    keys: Sequence[SQLColumnExpression[Any]],
    *,
    created_at: SQLColumnExpression[datetime],
    first_offered_at: SQLColumnExpression[datetime | None],
    resolved_at: SQLColumnExpression[datetime | None],
    accepted: SQLColumnExpression[Any],
    followed_up: SQLColumnExpression[Any],
    resolved: SQLColumnExpression[bool],
    settled: SQLColumnExpression[bool],
    offers: Any | None,
) -> list[SQLColumnExpression[Any]]:
    """The aggregate columns of :class:`Figures`, over units that are rows of the FROM; the
    offer tallies summed from ``offers``' columns, or left to the caller without them."""
    to_match = hours_between(first_offered_at, created_at)
    to_resolve = case((resolved, hours_between(resolved_at, created_at)), else_=null())
    return _figures_over(
        keys,
        first_offered_at=first_offered_at,
        hours=(to_match, to_resolve),
        medians=(median(to_match), median(to_resolve)),
        accepted=accepted,
        followed_up=followed_up,
        resolved=resolved,
        settled=settled,
        offers=offers,
    )


def _figures_over(
    keys: Sequence[SQLColumnExpression[Any]],
    *,
    first_offered_at: SQLColumnExpression[datetime | None],
    hours: tuple[SQLColumnExpression[Any], SQLColumnExpression[Any]],
    medians: tuple[SQLColumnExpression[Any], SQLColumnExpression[Any]],
    accepted: SQLColumnExpression[Any],
    followed_up: SQLColumnExpression[Any],
    resolved: SQLColumnExpression[bool],
    settled: SQLColumnExpression[bool],
    offers: Any | None,
) -> list[SQLColumnExpression[Any]]:
    """:func:`_figures` given the hours to match and to resolve (NULL where a unit has none)
    and the expressions of their medians."""
    to_match, to_resolve = hours
    return [
        *keys,
        func.count().label("submitted"),
        func.count(first_offered_at).label("matched"),
        func.coalesce(func.sum(accepted), 0).label("accepted"),
        func.coalesce(func.sum(followed_up), 0).label("followed_up"),
        func.sum(case((resolved, 1), else_=0)).label("resolved"),
        func.sum(case((settled, 1), else_=0)).label("settled"),
        func.count(to_match).label("match_count"),
        medians[0].label("match_median"),
        func.avg(to_match).label("match_mean"),
        func.count(to_resolve).label("resolution_count"),
        medians[1].label("resolution_median"),
        func.avg(to_resolve).label("resolution_mean"),
        *(
            func.coalesce(func.sum(column), 0).label(name)
            for name, column in _tally_sources(offers)
        ),
    ]


def _tally_sources(offers: Any | None) -> list[tuple[str, Any]]:
    return [] if offers is None else [(name, offers[name]) for name in TALLIES]


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _figures_of(row: Any) -> Figures:
    return Figures(
        submitted=int(row.submitted),
        matched=int(row.matched),
        accepted=int(row.accepted),
        followed_up=int(row.followed_up),
        resolved=int(row.resolved or 0),
        settled=int(row.settled or 0),
        match_count=int(row.match_count),
        match_median=_number(row.match_median),
        match_mean=_number(row.match_mean),
        resolution_count=int(row.resolution_count),
        resolution_median=_number(row.resolution_median),
        resolution_mean=_number(row.resolution_mean),
        offers=OfferTally(
            int(row.yes), int(row.no), int(row.feedback), int(row.rating_sum), int(row.satisfied)
        ),
    )


def _read_figures(session: Session, statement: Any) -> dict[str | None, Figures]:
    return {
        _as_key(row.group_key): _figures_of(row)
        for row in session.execute(statement)
        if row.submitted
    }


def request_total(session: Session, *, scope: Scope, filters: StatsFilter) -> Figures:
    """The figures over every request in scope, ungrouped: one statement. SQLite reads the
    requests' maintained facts (:func:`_grouped_and_total`): the whole /stats call, supply
    included, took 0.19 s CPU at 100k enterprises (150k requests), 0.37 s when the requests'
    offers were grouped again on each call."""
    if _on_sqlite(session):
        statement = _grouped_and_total(scope, filters, None)
    else:
        statement = _request_statement(scope, filters, None)
    rows = _read_figures(session, statement)
    return rows.get(None, Figures())


def request_total_and_provider_count(
    session: Session, *, scope: Scope, filters: StatsFilter
) -> tuple[Figures, int]:
    """:func:`request_total` and :func:`provider_count` in one statement: the head of the
    pages by provider, whose two passes over the scope's offers were one too many."""
    if _on_sqlite(session):
        total = _grouped_and_total(scope, filters, None).subquery("total")
        statement = select(total, _offered_providers(scope, filters).label("offered_providers"))
    else:
        statement = _request_statement(scope, filters, None, providers=True)
    row = session.execute(statement).one_or_none()
    if row is None or not row.submitted:
        return Figures(), int(row.offered_providers) if row is not None else 0
    return _figures_of(row), int(row.offered_providers)


def _on_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _offered_providers(scope: Scope, filters: StatsFilter) -> Any:
    """How many distinct providers were offered a request in scope, as a scalar subquery;
    the scope and filters are read from the requests' facts, without the enterprises."""
    statement = select(func.count(distinct(Assignment.provider_id))).where(
        Assignment.offered_at.is_not(None)
    )
    terms = _facts_conditions(scope, filters)
    if terms:
        statement = statement.join(
            RequestFacts, RequestFacts.request_id == Assignment.request_id
        ).where(*terms)
    return statement.scalar_subquery()


@dataclass(frozen=True)
class GroupPage:
    """The total, one page of groups in key order and how many groups there are in all."""

    total: Figures
    groups: list[tuple[str, Figures]]
    group_count: int
    more: bool


def request_page(
    session: Session,
    *,
    scope: Scope,
    filters: StatsFilter,
    group_by: GroupBy,
    after: str | None,
    limit: int,
) -> GroupPage:
    """The total, the first ``limit`` groups (region, category or tier) whose key sorts after
    ``after``, and the number of groups, in one statement.

    The total's medians cannot be summed from the groups', so the statement reads rows of both
    kinds: PostgreSQL computes them in one pass (``GROUPING SETS ((key), ())``), SQLite, which
    has no grouping sets, as a ``UNION ALL`` of the grouped and the ungrouped statement. Every
    group key is a NOT NULL column, so the row whose key is NULL is the total. ``count(key)
    OVER ()`` counts the groups before the keyset filter, which is applied outside (a window
    keeps the planner from pushing it inside); the total row always passes the filter, so the
    count comes back even past the last page.
    """
    if group_by is GroupBy.PROVIDER:
        raise ValueError("a request has no single provider; use provider_page")
    if _on_sqlite(session):
        both = _grouped_and_total(scope, filters, group_by).subquery("both")
    else:
        both = _request_statement(scope, filters, group_by, grouping_sets=True).subquery("both")
    counted = select(both, func.count(both.c.group_key).over().label("group_count")).subquery(
        "counted"
    )
    key = counted.c.group_key
    statement = select(counted).order_by(key.asc().nulls_first()).limit(limit + 2)
    if after is not None:
        statement = statement.where(or_(key.is_(None), key > literal(after, String())))
    rows = list(session.execute(statement))
    count = int(rows[0].group_count) if rows else 0
    total = next((_figures_of(r) for r in rows if r.group_key is None and r.submitted), None)
    groups = [(_as_key(r.group_key) or "", _figures_of(r)) for r in rows if r.group_key is not None]
    return GroupPage(total or Figures(), groups[:limit], count, len(groups) > limit)


def request_groups(
    session: Session, *, scope: Scope, filters: StatsFilter, group_by: GroupBy
) -> Iterator[tuple[str, Figures]]:
    """Every group (region, category or tier) in key order, streamed ``BATCH`` rows at a time,
    for the export, which wants them all rather than a page."""
    if group_by is GroupBy.PROVIDER:
        raise ValueError("a request has no single provider; use provider_groups")
    if _on_sqlite(session):
        both = _grouped_and_total(scope, filters, group_by).subquery("both")
        statement = select(both).where(both.c.group_key.is_not(None)).order_by(both.c.group_key)
    else:
        statement = _request_statement(scope, filters, group_by).order_by("group_key")
    for row in session.execute(statement.execution_options(yield_per=BATCH)):
        yield _as_key(row.group_key) or "", _figures_of(row)


def _grouped_and_total(scope: Scope, filters: StatsFilter, group_by: GroupBy | None) -> Any:
    """SQLite's stand-in for ``GROUPING SETS ((key), ())``: the rows of both, from one pass
    (without ``group_by``, the total alone), over the requests' maintained facts
    (:func:`_facts_units`); the total is summed from the groups
    (:func:`_groups_and_their_total`)."""
    units = _facts_units(scope, filters, group_by)

    def figures(key: SQLColumnExpression[Any]) -> Any:
        return select(
            *_figures_over(
                [key.label("group_key")],
                first_offered_at=units.c.first_offered_at,
                hours=(units.c.to_match, units.c.to_resolve),
                medians=(median(units.c.to_match), median(units.c.to_resolve)),
                accepted=units.c.accepted,
                followed_up=units.c.followed_up,
                resolved=units.c.status == RequestStatus.RESOLVED,
                settled=units.c.status.in_(SETTLED),
                offers=units.c,
            )
        )

    if group_by is None:
        return figures(null())
    return _groups_and_their_total(units)


def _facts_units(scope: Scope, filters: StatsFilter, group_by: GroupBy | None) -> Any:
    """One row per request in scope (its group key, hours to match and to resolve and the
    other inputs of the figures), read from ``request_facts`` alone: the facts the figures
    once grouped from every request's offers on each call are kept there by the database
    (app/models/request_facts.py), and its region and tier spare the join to the enterprises.
    """
    facts = RequestFacts
    created_at = facts.created_at
    resolved = facts.status == RequestStatus.RESOLVED
    return (
        select(
            _facts_key(group_by).label("group_key"),
            hours_between(facts.first_offered_at, created_at).label("to_match"),
            case((resolved, hours_between(facts.resolved_at, created_at)), else_=null()).label(
                "to_resolve"
            ),
            facts.status,
            facts.first_offered_at,
            facts.accepted,
            facts.followed_up,
            facts.answered_yes.label("yes"),
            facts.answered_no.label("no"),
            facts.feedback,
            facts.rating_sum,
            facts.satisfied,
        )
        .where(*_facts_conditions(scope, filters))
        .subquery("units")
    )


def _facts_key(group_by: GroupBy | None) -> SQLColumnExpression[Any]:
    """:func:`_group_key` over ``request_facts``."""
    return _key_over(
        group_by,
        region=RequestFacts.region_code,
        category=RequestFacts.category,
        tier=RequestFacts.tier,
        provider=None,
    )


def _facts_conditions(scope: Scope, f: StatsFilter) -> list[ColumnElement[bool]]:
    """:func:`_conditions` over ``request_facts``."""
    terms = []
    if scope.prefixes is not None:
        terms.append(region_clause(RequestFacts.region_code, scope.prefixes))
    return terms + _filter_terms(
        f, category=RequestFacts.category, tier=RequestFacts.tier, created=RequestFacts.created_at
    )


ADDITIVE = (
    *("submitted", "matched", "accepted", "followed_up", "resolved", "settled"),
    *("match_count", "resolution_count", *TALLIES),
)


def _groups_and_their_total(units: Any) -> Any:
    """The groups' rows over ``units`` (one row per request, with its ``group_key``) and the
    total's row, summed from the groups' rather than aggregated over every request again.

    Counts and tallies add up; a mean is the summed hours over the summed count; a median is
    taken over every group's values, which the groups' aggregate packs (app/sqlfuncs.py), so
    the total costs one row per group instead of a second pass, whose two medians alone fed
    every request to Python once more."""
    to_match, to_resolve = units.c.to_match, units.c.to_resolve
    resolved = units.c.status == RequestStatus.RESOLVED
    grouped = (
        select(
            units.c.group_key,
            func.count().label("submitted"),
            func.count(units.c.first_offered_at).label("matched"),
            func.coalesce(func.sum(units.c.accepted), 0).label("accepted"),
            func.coalesce(func.sum(units.c.followed_up), 0).label("followed_up"),
            func.sum(case((resolved, 1), else_=0)).label("resolved"),
            func.sum(case((units.c.status.in_(SETTLED), 1), else_=0)).label("settled"),
            func.count(to_match).label("match_count"),
            func.count(to_resolve).label("resolution_count"),
            *(func.coalesce(func.sum(units.c[name]), 0).label(name) for name in TALLIES),
            func.sum(to_match).label("match_sum"),
            median_values(to_match).label("match_values"),
            func.sum(to_resolve).label("resolution_sum"),
            median_values(to_resolve).label("resolution_values"),
        )
        .group_by(units.c.group_key)
        .cte("grouped")
        .prefix_with("MATERIALIZED")
    )
    g = grouped.c
    groups = select(
        g.group_key,
        *(g[name] for name in ADDITIVE),
        median_of(g.match_values).label("match_median"),
        (g.match_sum / g.match_count).label("match_mean"),
        median_of(g.resolution_values).label("resolution_median"),
        (g.resolution_sum / g.resolution_count).label("resolution_mean"),
    )
    total = select(
        null().label("group_key"),
        *(func.sum(g[name]).label(name) for name in ADDITIVE),
        merged_median(g.match_values).label("match_median"),
        (func.sum(g.match_sum) / func.sum(g.match_count)).label("match_mean"),
        merged_median(g.resolution_values).label("resolution_median"),
        (func.sum(g.resolution_sum) / func.sum(g.resolution_count)).label("resolution_mean"),
    )
    return union_all(groups, total)


def _request_statement(
    scope: Scope,
    filters: StatsFilter,
    group_by: GroupBy | None,
    *,
    grouping_sets: bool = False,
    providers: bool = False,
) -> Any:
    """Figures per group (``group_key``) over the requests in scope, each joined to its
    per-request offer facts. Ungrouped, the offer tallies (and, with ``providers``, the
    number of providers offered one) come from one more pass over the offers, joined on
    (as one row each side); grouped, from the per-request facts. A total over a region scope
    (or a tier) keeps them per request too unless it counts the providers: there the second
    pass joins the enterprises again, which costs about what it saves (more on SQLite)."""
    split = not grouping_sets and _split(scope, filters, group_by, providers=providers)
    offers = _per_request_offers(tallies=not split)
    key: Label[Any] = _group_key(group_by).label("group_key")
    statement = (
        select(
            *_figures(
                [key],
                created_at=HelpRequest.created_at,
                first_offered_at=offers.c.first_offered_at,
                resolved_at=HelpRequest.resolved_at,
                accepted=offers.c.accepted,
                followed_up=offers.c.followed_up,
                resolved=HelpRequest.status == RequestStatus.RESOLVED,
                settled=HelpRequest.status.in_(SETTLED),
                offers=None if split else offers.c,
            )
        )
        .select_from(HelpRequest)
        .outerjoin(offers, offers.c.request_id == HelpRequest.id)
    )
    statement = _grouped(
        _in_scope(statement, scope, filters, group_by), group_by, grouping_sets=grouping_sets
    )
    if not split:
        if providers:
            raise ValueError("the providers offered work are counted in the ungrouped total")
        return statement
    requests = statement.subquery("requests")
    tallies = _offer_tallies(scope, filters, providers=providers)
    extra = [tallies.c.offered_providers] if providers else []
    return select(
        requests,
        *(func.coalesce(tallies.c[name], 0).label(name) for name in TALLIES),
        *(func.coalesce(column, 0).label(column.name) for column in extra),
    ).join_from(requests, tallies, true())


def _split(
    scope: Scope, filters: StatsFilter, group_by: GroupBy | None, *, providers: bool = False
) -> bool:
    """Whether an ungrouped total sums its offer tallies in a second pass over the offers
    (see :func:`_request_statement`)."""
    return group_by is None and (providers or not _needs_enterprise(scope, filters, None))


def _offered_in_scope(scope: Scope, filters: StatsFilter) -> Any:
    """Ids of the providers offered a request in scope (one row per offer, not distinct);
    never correlated, as it goes inside statements that read ``assignments`` themselves."""
    statement = (
        select(Assignment.provider_id)
        .correlate(None)
        .select_from(Assignment)
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .where(Assignment.offered_at.is_not(None))
    )
    return _in_scope(statement, scope, filters, None)


def provider_page(
    session: Session, *, scope: Scope, filters: StatsFilter, after: int | None, limit: int
) -> tuple[list[tuple[str, ProviderFigures]], bool]:
    """The first ``limit`` provider groups whose id is above ``after``, in id order, and
    whether more groups follow.

    The page's ids are picked first (``DISTINCT ... ORDER BY ... LIMIT``), and the pairs and
    load are computed for those providers only, so a page costs about ``limit`` providers'
    offers (indexed on ``assignments.provider_id``), not the province's 35,000 groups.
    """
    keys = _offered_in_scope(scope, filters).distinct()
    if after is not None:
        keys = keys.where(Assignment.provider_id > after)
    keys = keys.order_by(Assignment.provider_id).limit(limit + 1)
    figures = list(_provider_figures(session, _pair_statement(scope, filters, keys)))
    return figures[:limit], len(figures) > limit


def provider_count(session: Session, *, scope: Scope, filters: StatsFilter) -> int:
    """How many providers were offered a request in scope: the number of provider groups."""
    counted = _offered_in_scope(scope, filters).with_only_columns(
        func.count(distinct(Assignment.provider_id))
    )
    return int(session.scalar(counted) or 0)


def provider_groups(
    session: Session, *, scope: Scope, filters: StatsFilter
) -> Iterator[tuple[str, ProviderFigures]]:
    """Every provider group in id order, streamed ``BATCH`` rows at a time (the export)."""
    statement = _pair_statement(scope, filters, None).execution_options(yield_per=BATCH)
    return _provider_figures(session, statement)


def _provider_figures(session: Session, statement: Any) -> Iterator[tuple[str, ProviderFigures]]:
    for row in session.execute(statement):
        load = LoadFigures(1, int(row.capacity), int(row.open_assignments))
        yield str(row.group_key), ProviderFigures(_figures_of(row), row.name, load)


def _pair_statement(scope: Scope, filters: StatsFilter, providers: Any | None) -> Any:
    """Figures per provider over request × provider pairs it was offered, keyed by its id,
    with its name and its load now (over all regions, as in :func:`supply_load`); only the
    ``providers`` (a statement selecting their ids) if given; in provider id order.

    A provider is credited with a resolution only for work it completed that was not rated
    unsatisfied, and its ``settled`` counts only requests it accepted, so a provider that
    declined is judged by its acceptance rate, not by someone else's outcome.
    """
    delivered = and_(
        Assignment.status == AssignmentStatus.COMPLETED,
        or_(Feedback.id.is_(None), Feedback.satisfied.is_(true())),
    )
    pairs = (
        select(
            Assignment.provider_id.label("provider_id"),
            HelpRequest.status.label("status"),
            HelpRequest.created_at.label("created_at"),
            HelpRequest.resolved_at.label("resolved_at"),
            func.min(Assignment.offered_at).label("first_offered_at"),
            _flag(_answered_yes()).label("accepted"),
            _flag(_followed_up()).label("followed_up"),
            _flag(delivered).label("delivered"),
            *_tally_columns(true()),
        )
        .select_from(Assignment)
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .outerjoin(Feedback, Feedback.assignment_id == Assignment.id)
        .where(Assignment.offered_at.is_not(None))
    )
    if providers is not None:
        pairs = pairs.where(Assignment.provider_id.in_(providers))
    pairs = (
        _in_scope(pairs, scope, filters, None)
        .group_by(HelpRequest.id, Assignment.provider_id)
        .subquery("pairs")
    )
    open_now = _open_counts(providers)
    resolved = and_(pairs.c.status == RequestStatus.RESOLVED, pairs.c.delivered == 1)
    statement = select(
        *_figures(
            [pairs.c.provider_id.label("group_key")],
            created_at=pairs.c.created_at,
            first_offered_at=pairs.c.first_offered_at,
            resolved_at=pairs.c.resolved_at,
            accepted=pairs.c.accepted,
            followed_up=pairs.c.followed_up,
            resolved=resolved,
            settled=or_(resolved, and_(pairs.c.status.in_(SETTLED), pairs.c.accepted == 1)),
            offers=pairs.c,
        ),
        Provider.name,
        Provider.capacity,
        func.coalesce(open_now.c.open_assignments, 0).label("open_assignments"),
    )
    return (
        statement.join(Provider, Provider.id == pairs.c.provider_id)
        .outerjoin(open_now, open_now.c.provider_id == Provider.id)
        .group_by(
            pairs.c.provider_id, Provider.name, Provider.capacity, open_now.c.open_assignments
        )
        .order_by(pairs.c.provider_id)
    )


def busiest_providers(
    session: Session, *, scope: Scope, filters: StatsFilter, limit: int
) -> list[tuple[str, str, LoadFigures]]:
    """Up to ``limit`` providers offered a request in scope, with capacity, by utilisation
    now (open assignments ÷ capacity, highest first; ties by id): id, name and load.

    The dashboard's load chart wants the top of that order, which no page in id order gives.
    """
    open_now = _open_counts(None)
    opened = func.coalesce(open_now.c.open_assignments, 0)
    statement = (
        select(Provider.id, Provider.name, Provider.capacity, opened.label("open_assignments"))
        .outerjoin(open_now, open_now.c.provider_id == Provider.id)
        .where(Provider.id.in_(_offered_in_scope(scope, filters)), Provider.capacity > 0)
        .order_by((opened * literal(1.0) / Provider.capacity).desc(), Provider.id)
        .limit(limit)
    )
    return [
        (str(row.id), row.name, LoadFigures(1, int(row.capacity), int(row.open_assignments)))
        for row in session.execute(statement)
    ]


def _open_counts(providers: Any | None) -> Any:
    """Open assignments per provider now, over all regions: capacity is one number per
    provider, so a slot taken elsewhere is not free here. Only the ``providers`` if given."""
    statement = select(Assignment.provider_id, func.count().label("open_assignments")).where(
        Assignment.status.in_(OPEN)
    )
    if providers is not None:
        statement = statement.where(Assignment.provider_id.in_(providers))
    return statement.group_by(Assignment.provider_id).subquery("open_counts")


def supply_load(session: Session, *, scope: Scope, category: str | None) -> LoadFigures:
    """The load of the active providers the scope can draw on (serving its regions, or
    remote, or anywhere) and, with a category, skilled in it; summed in the database, so
    50k providers' JSON never reaches Python.

    On SQLite the open assignments are counted as those of the chosen providers (the sum of
    their per-provider counts, without grouping every open assignment by provider first),
    which the status-and-provider index answers alone: the grouped form scanned every
    assignment by provider there, 0.2 s at province scale. PostgreSQL keeps the grouped form,
    which it hashes in 0.07 s where the counted form took 0.33 s."""
    dialect = session.get_bind().dialect.name
    terms = [Provider.active.is_(true()), scope.serves(dialect)]
    if category is not None:
        terms.append(json_has_key(Provider.skills, category, dialect))
    if dialect == "postgresql":
        open_counts = _open_counts(None)
        statement = (
            select(
                func.count().label("providers"),
                func.coalesce(func.sum(Provider.capacity), 0).label("capacity"),
                func.coalesce(func.sum(open_counts.c.open_assignments), 0).label(
                    "open_assignments"
                ),
            )
            .select_from(Provider)
            .outerjoin(open_counts, open_counts.c.provider_id == Provider.id)
            .where(*terms)
        )
    else:
        statement = _counted_supply(terms)
    row = session.execute(statement).one()
    return LoadFigures(int(row.providers), int(row.capacity), int(row.open_assignments))


def _counted_supply(terms: list[ColumnElement[bool]]) -> Any:
    chosen = select(Provider.id, Provider.capacity).where(*terms).cte("chosen")
    open_now = (
        select(func.count())
        .select_from(Assignment)
        .where(Assignment.status.in_(OPEN), Assignment.provider_id.in_(select(chosen.c.id)))
        .scalar_subquery()
    )
    return select(
        func.count().label("providers"),
        func.coalesce(func.sum(chosen.c.capacity), 0).label("capacity"),
        open_now.label("open_assignments"),
    ).select_from(chosen)
