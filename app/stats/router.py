from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.common.schemas import problem_responses
from app.common.types import CategoryKey, RegionPrefix
from app.deps import DbSession, OneHopRoute, Staff
from app.models import Tier
from app.stats import service as stats_service
from app.stats.repository import StatsFilter
from app.stats.schemas import GroupBy, StatsRead

router = APIRouter(route_class=OneHopRoute, prefix="/stats", tags=["stats"])


async def stats_filter(
    region: Annotated[
        RegionPrefix | None, Query(description="Narrow to a region inside your own")
    ] = None,
    category: Annotated[CategoryKey | None, Query()] = None,
    tier: Tier | None = None,
    since: Annotated[
        datetime | None, Query(description="Requests created at or after (UTC if no offset)")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Requests created before (UTC if no offset)")
    ] = None,
) -> StatsFilter:
    return StatsFilter(
        region=region,
        category=category,
        tier=tier,
        since=stats_service.as_utc(since, field="since"),
        until=stats_service.as_utc(until, field="until"),
    )


async def stats_cache(request: Request) -> stats_service.StatsCache:
    cache: stats_service.StatsCache = request.app.state.stats_cache
    return cache


async def group_page(
    request: Request,
    limit: Annotated[int, Query(ge=1, description="Groups per page; capped by the server.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=100, description="`next_cursor` of the previous page.")
    ] = None,
) -> stats_service.GroupPageParams:
    """The same ``limit`` and ``cursor`` as every list (app/common/pagination.py); the cursor
    is decoded by the service, as its kind depends on ``group_by``."""
    cap: int = request.app.state.settings.page_limit_max
    return stats_service.GroupPageParams(limit=min(limit, cap), cursor=cursor)


@router.get("", response_model=StatsRead, responses=problem_responses(401, 403, 422))
def read_stats(
    session: DbSession,
    principal: Staff,
    filters: Annotated[StatsFilter, Depends(stats_filter)],
    page: Annotated[stats_service.GroupPageParams, Depends(group_page)],
    cache: Annotated[stats_service.StatsCache, Depends(stats_cache)],
    group_by: GroupBy | None = None,
) -> StatsRead:
    """Funnel, time to match and to resolution, acceptance / resolution / satisfaction rates
    and provider load, over the caller's regions, in total and per group.

    Groups are paged in key order (provider id, else the key's text): ``limit`` (capped),
    ``cursor`` from the previous answer's ``next_cursor``, and ``total_groups``. The total
    block is the same on every page. ``GET /exports/stats`` gives every group at once."""
    return stats_service.summarise(
        session, principal=principal, filters=filters, group_by=group_by, page=page, cache=cache
    )
