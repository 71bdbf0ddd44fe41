"""Shape the stats queries into the figures coordinators watch. Read-only: nothing is flushed.

At most four queries whatever the volume, each aggregated in the database (one row per
group): the supply's load; request figures for the total and one page of groups with the
number of groups (offer and rating tallies counted in the same pass; one statement); or,
grouped by provider, the request total, one page of providers' figures over request ×
provider pairs with each one's name and load, and the number of providers offered work.
Groups are paged like every list of the API (keyset on the group key, capped ``limit``), so
a province's 35,000 provider groups cost a page each, not one 35,000-group body; with the
cache, the pages by provider share everything but the page itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from sqlalchemy.orm import Session

from app.common.cache import TTLCache
from app.common.clock import utc_now
from app.common.pagination import (
    decode_cursor,
    decode_key_cursor,
    encode_cursor,
    encode_key_cursor,
)
from app.common.principal import Principal
from app.errors import Forbidden, InvalidInput
from app.stats import repository
from app.stats.repository import Figures, LoadFigures, OfferTally, ProviderFigures, StatsFilter
from app.stats.schemas import (
    Durations,
    Funnel,
    GroupBy,
    Load,
    Rates,
    Satisfaction,
    StatsGroup,
    StatsRead,
)


def as_utc(moment: datetime | None, *, field: str) -> datetime | None:
    """Query times without an offset are taken as UTC, the zone every timestamp is stored in."""
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 has no UTC equivalent
        raise InvalidInput(f"{field} is out of range", field=field) from None


def _check(principal: Principal, filters: StatsFilter) -> None:
    """Asking for a region outside one's own is refused, not silently answered with zeros."""
    if filters.region is not None and not principal.covers_region(filters.region):
        raise Forbidden(f"region {filters.region} is outside your regions", field="region")
    if filters.since and filters.until and filters.since >= filters.until:
        raise InvalidInput("until must be later than since", field="until")


StatsCache = TTLCache[StatsRead]


@dataclass(frozen=True)
class GroupPageParams:
    """Which page of groups to answer: at most ``limit`` groups whose key sorts after the one
    the ``cursor`` carries (a provider id grouped by provider, else the region, category or
    tier key), in key order, as every list of the API pages."""

    limit: int = 50
    cursor: str | None = None


FIRST_PAGE = GroupPageParams()


def summarise(
    session: Session,
    *,
    principal: Principal,
    filters: StatsFilter,
    group_by: GroupBy | None,
    page: GroupPageParams = FIRST_PAGE,
    cache: StatsCache | None = None,
) -> StatsRead:
    """The total over the caller's scope and, with ``group_by``, one page of the same figures
    per group, with the number of groups and the cursor of the next page.

    With a ``cache``, callers with the same scope, filters, grouping and page share one
    computation per TTL (``generated_at`` tells how old it is); see app/common/cache.py for why.
    Grouped by provider, the pages also share their head (the total, the supply's load and the
    number of providers: a pass over the scope), so walking the pages costs a page each.
    """
    _check(principal, filters)
    after = _after(group_by, page.cursor)
    scope = repository.visible_to(principal, region=filters.region)

    def head() -> StatsRead:
        compute_head = partial(_provider_head, session, scope, filters)
        if cache is None:
            return compute_head()
        return cache.get_or_compute((scope, filters, group_by, "head"), compute_head)

    def compute() -> StatsRead:
        if group_by is GroupBy.PROVIDER:
            start = after if isinstance(after, int) else None
            return _provider_page(session, scope, filters, head(), start, page.limit)
        return _summarise(
            session, scope=scope, filters=filters, group_by=group_by, limit=page.limit, after=after
        )

    if cache is None:
        return compute()
    return cache.get_or_compute((scope, filters, group_by, page.limit, after), compute)


def every_group(
    session: Session, *, principal: Principal, filters: StatsFilter, group_by: GroupBy | None
) -> tuple[StatsRead, Iterator[StatsGroup]]:
    """The total (``groups`` left empty) and every group in key order, streamed from the
    database in batches: for the export, which gives all groups however many there are."""
    _check(principal, filters)
    scope = repository.visible_to(principal, region=filters.region)
    head = _summarise(session, scope=scope, filters=filters, group_by=None, limit=0, after=None)
    head = head.model_copy(update={"group_by": group_by})
    if group_by is None:
        return head, iter(())
    if group_by is GroupBy.PROVIDER:
        pairs = repository.provider_groups(session, scope=scope, filters=filters)
        return head, (_provider_block(key, found) for key, found in pairs)
    rows = repository.request_groups(session, scope=scope, filters=filters, group_by=group_by)
    return head, (_block(key, figures, None) for key, figures in rows)


@dataclass(frozen=True)
class ProviderLoad:
    """A provider offered work in the caller's scope, and its load now."""

    key: str
    label: str
    load: Load


def busiest_providers(
    session: Session, *, principal: Principal, filters: StatsFilter, limit: int
) -> list[ProviderLoad]:
    """The ``limit`` providers offered work in scope with the highest utilisation now."""
    _check(principal, filters)
    scope = repository.visible_to(principal, region=filters.region)
    found = repository.busiest_providers(session, scope=scope, filters=filters, limit=limit)
    return [ProviderLoad(key, name, _load(load)) for key, name, load in found]


def _after(group_by: GroupBy | None, cursor: str | None) -> str | int | None:
    """The key a cursor carries; one made up, or given without ``group_by``, is a 422."""
    if cursor is None:
        return None
    if group_by is None:
        raise InvalidInput("cursor pages groups: give group_by with it", field="cursor")
    if group_by is GroupBy.PROVIDER:
        return decode_cursor(cursor)
    return decode_key_cursor(cursor)


@dataclass(frozen=True)
class _GroupsPart:
    groups: list[StatsGroup]
    total_groups: int | None = None
    next_cursor: str | None = None


def _summarise(
    session: Session,
    *,
    scope: repository.Scope,
    filters: StatsFilter,
    group_by: GroupBy | None,
    limit: int,
    after: str | int | None,
) -> StatsRead:
    """The answer without groups, or with a page of region, category or tier groups."""
    if group_by is GroupBy.PROVIDER:
        raise ValueError("provider pages share a head: see summarise")
    pool = _load(repository.supply_load(session, scope=scope, category=filters.category))
    if group_by is None:
        totals, part = repository.request_total(session, scope=scope, filters=filters), None
    else:
        totals, part = _request_part(session, scope, filters, group_by, after, limit)
    return _answer(scope, group_by, _block(None, totals, pool), part)


def _answer(
    scope: repository.Scope, group_by: GroupBy | None, total: StatsGroup, part: _GroupsPart | None
) -> StatsRead:
    return StatsRead(
        scope=None if scope.prefixes is None else list(scope.prefixes),
        group_by=group_by,
        generated_at=utc_now(),
        total=total,
        groups=part.groups if part else [],
        next_cursor=part.next_cursor if part else None,
        total_groups=part.total_groups if part else None,
    )


def _provider_head(session: Session, scope: repository.Scope, filters: StatsFilter) -> StatsRead:
    """What every page by provider shares: the total, the supply's load, the group count
    (the number of providers offered work, counted in the total's statement)."""
    pool = _load(repository.supply_load(session, scope=scope, category=filters.category))
    totals, count = repository.request_total_and_provider_count(
        session, scope=scope, filters=filters
    )
    return _answer(scope, GroupBy.PROVIDER, _block(None, totals, pool), _GroupsPart([], count))


def _provider_page(
    session: Session,
    scope: repository.Scope,
    filters: StatsFilter,
    head: StatsRead,
    after: int | None,
    limit: int,
) -> StatsRead:
    pairs, more = repository.provider_page(
        session, scope=scope, filters=filters, after=after, limit=limit
    )
    next_cursor = encode_cursor(int(pairs[-1][0])) if more and pairs else None
    groups = [_provider_block(key, found) for key, found in pairs]
    return head.model_copy(update={"groups": groups, "next_cursor": next_cursor})


def _request_part(
    session: Session,
    scope: repository.Scope,
    filters: StatsFilter,
    group_by: GroupBy,
    after: str | int | None,
    limit: int,
) -> tuple[Figures, _GroupsPart]:
    start = after if isinstance(after, str) else None
    found = repository.request_page(
        session, scope=scope, filters=filters, group_by=group_by, after=start, limit=limit
    )
    groups = [_block(key, figures, None) for key, figures in found.groups]
    last = found.groups[-1][0] if found.groups else None
    next_cursor = encode_key_cursor(last) if found.more and last is not None else None
    return found.total, _GroupsPart(groups, found.group_count, next_cursor)


def _provider_block(key: str, found: ProviderFigures) -> StatsGroup:
    return _block(key, found.figures, _load(found.load), found.name)


def _block(
    key: str | None,
    figures: Figures,
    load: Load | None,
    label: str | None = None,
) -> StatsGroup:
    return StatsGroup(
        key=key,
        label=label,
        funnel=Funnel(
            submitted=figures.submitted,
            matched=figures.matched,
            accepted=figures.accepted,
            first_follow_up=figures.followed_up,
            resolved=figures.resolved,
        ),
        time_to_match_hours=_durations(
            figures.match_count, figures.match_median, figures.match_mean
        ),
        time_to_resolution_hours=_durations(
            figures.resolution_count, figures.resolution_median, figures.resolution_mean
        ),
        rates=_rates(figures.offers, resolved=figures.resolved, settled=figures.settled),
        load=load,
    )


def _rates(tally: OfferTally, *, resolved: int, settled: int) -> Rates:
    answered = tally.answered_yes + tally.answered_no
    return Rates(
        offers_answered=answered,
        offers_accepted=tally.answered_yes,
        acceptance_rate=_ratio(tally.answered_yes, answered),
        settled=settled,
        resolution_rate=_ratio(resolved, settled),
        satisfaction=Satisfaction(
            feedback=tally.feedback,
            mean_rating=_ratio(tally.rating_sum, tally.feedback),
            satisfied_share=_ratio(tally.satisfied, tally.feedback),
        ),
    )


def _load(figures: LoadFigures) -> Load:
    return Load(
        providers=figures.providers,
        capacity=figures.capacity,
        open_assignments=figures.open_assignments,
        utilisation=_ratio(figures.open_assignments, figures.capacity),
    )


def _durations(count: int, median: float | None, mean: float | None) -> Durations:
    if count == 0 or median is None or mean is None:
        return Durations(count=0, median=None, mean=None)
    return Durations(count=count, median=round(median, 3), mean=round(mean, 3))


def _ratio(numerator: int, denominator: int) -> float | None:
    """``None`` rather than 0 when there is nothing to divide by: no data is not 0 %."""
    return None if denominator == 0 else round(numerator / denominator, 4)
