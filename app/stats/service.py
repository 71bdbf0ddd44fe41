"""Shape the stats queries into the figures coordinators watch. Read-only: nothing is flushed.

At most three queries whatever the volume, each aggregated in the database (one row per
group): request figures for the total and per group (offer and rating tallies counted in the
same pass; one statement on PostgreSQL, two on SQLite), per provider the figures over request
× provider pairs with each provider's name and load, and the supply's load.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.common.cache import TTLCache
from app.common.clock import utc_now
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


def summarise(
    session: Session,
    *,
    principal: Principal,
    filters: StatsFilter,
    group_by: GroupBy | None,
    cache: StatsCache | None = None,
) -> StatsRead:
    """The total over the caller's scope and, with ``group_by``, the same figures per group.

    With a ``cache``, callers with the same scope, filters and grouping share one computation
    per TTL (``generated_at`` tells how old it is); see app/common/cache.py for why.
    """
    _check(principal, filters)
    scope = repository.visible_to(principal, region=filters.region)
    if cache is None:
        return _summarise(session, scope=scope, filters=filters, group_by=group_by)
    return cache.get_or_compute(
        (scope, filters, group_by),
        lambda: _summarise(session, scope=scope, filters=filters, group_by=group_by),
    )


def _summarise(
    session: Session,
    *,
    scope: repository.Scope,
    filters: StatsFilter,
    group_by: GroupBy | None,
) -> StatsRead:
    by_request = None if group_by is GroupBy.PROVIDER else group_by
    totals, figures = repository.request_figures(
        session, scope=scope, filters=filters, group_by=by_request
    )
    pool = _load(repository.supply_load(session, scope=scope, category=filters.category))
    total = _block(None, totals, pool)
    groups: list[StatsGroup] = []
    if group_by is GroupBy.PROVIDER:
        pairs = repository.pair_figures(session, scope=scope, filters=filters)
        groups = _provider_groups(pairs)
    elif group_by is not None:
        groups = _groups(figures, sort_key=str)
    return StatsRead(
        scope=None if scope.prefixes is None else list(scope.prefixes),
        group_by=group_by,
        generated_at=utc_now(),
        total=total,
        groups=groups,
    )


def _groups(
    figures: dict[str, Figures],
    *,
    sort_key: Callable[[str], str | int],
    label: Callable[[str], str | None] = lambda _key: None,
    load: Callable[[str], Load | None] = lambda _key: None,
) -> list[StatsGroup]:
    """One block per key that has requests (by provider: offers), in key order."""
    return [
        _block(key, figures[key], load(key), label(key)) for key in sorted(figures, key=sort_key)
    ]


def _provider_groups(pairs: dict[str, ProviderFigures]) -> list[StatsGroup]:
    def label(key: str) -> str | None:
        found = pairs.get(key)
        return found.name if found else None

    def load(key: str) -> Load | None:
        found = pairs.get(key)
        return _load(found.load) if found else None

    figures = {key: found.figures for key, found in pairs.items()}
    return _groups(figures, sort_key=int, label=label, load=load)


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
