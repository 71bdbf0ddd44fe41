from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.common.pagination import PageDep, PageInQuery, paginate
from app.common.principal import Principal
from app.common.schemas import Page, problem_responses
from app.common.types import RegionPrefix
from app.deps import AdminApart, CurrentPrincipal, DbSession, OneHopRoute, Scopes, Staff
from app.errors import Forbidden
from app.models import Notification
from app.supervision import batches, pages, repository
from app.supervision import service as supervision_service
from app.supervision.clocks import Overdue, PausedWork
from app.supervision.schemas import (
    BoardRead,
    NotificationRead,
    OverdueRead,
    PausedWorkRead,
    SweepRead,
)

router = APIRouter(route_class=OneHopRoute, tags=["supervision"])


def _checked_region(principal: Principal, region: str | None) -> str | None:
    if region and not principal.covers_region(region):
        raise Forbidden(f"region {region} is outside your regions", field="region")
    return region


Region = Annotated[RegionPrefix | None, Query(description="Narrow to one region prefix")]


async def board_cache(request: Request) -> pages.BoardCache:
    cache: pages.BoardCache = request.app.state.board_cache
    return cache


BoardCacheDep = Annotated[pages.BoardCache, Depends(board_cache)]


async def board_pages(request: Request) -> pages.BoardPages:
    boards: pages.BoardPages = request.app.state.board_pages
    return boards


BoardPagesDep = Annotated[pages.BoardPages, Depends(board_pages)]


@router.get("/supervision", response_model=BoardRead, responses=problem_responses(401, 403))
def supervision_board(
    session: DbSession,
    principal: Staff,
    page: PageDep,
    cache: BoardCacheDep,
    boards: BoardPagesDep,
    region: Region = None,
) -> pages.BoardPage:
    """Overdue offers, first follow-ups and requests (first page of each, with totals), and
    the ageing of the open backlog. The board may be up to ``ZHUQI_BOARD_CACHE_SECONDS`` old
    (callers of the same regions share it), its totals and ageing up to
    ``ZHUQI_STATS_CACHE_SECONDS``; ``generated_at`` says when it was read. The lists below
    are read live."""
    region = _checked_region(principal, region)
    return pages.board(
        session, principal=principal, region=region, page=page, cache=cache, boards=boards
    )


@router.get(
    "/supervision/overdue/{which}",
    response_model=Page[OverdueRead],
    responses=problem_responses(401, 403),
)
def overdue_list(
    which: pages.OverdueList,
    session: DbSession,
    principal: Staff,
    page: PageDep,
    cache: BoardCacheDep,
    region: Region = None,
) -> Page[Overdue]:
    """One of the board's lists, page by page (``cursor`` from the previous page)."""
    region = _checked_region(principal, region)
    return pages.overdue(
        session, principal=principal, region=region, which=which, page=page, cache=cache
    )


@router.get(
    "/supervision/paused-work",
    response_model=Page[PausedWorkRead],
    responses=problem_responses(401, 403),
)
def paused_work(
    session: DbSession,
    principal: Staff,
    page: PageDep,
    cache: BoardCacheDep,
    region: Region = None,
) -> Page[PausedWork]:
    """Accepted or active work of providers paused today, page by page (the board's list)."""
    region = _checked_region(principal, region)
    return pages.paused(session, principal=principal, region=region, page=page, cache=cache)


@router.post("/supervision/sweep", response_model=SweepRead, responses=problem_responses(401, 403))
def sweep_now(scopes: Scopes, _admin: AdminApart) -> supervision_service.SweepReport:
    """Run the deadline sweep now (the worker runs it on its own every few minutes).

    In bounded batches of short transactions, one at a time on one connection, never one
    long one: a province's sweep is minutes of work, and on SQLite a single transaction
    would hold the only write lock throughout. The answer counts the batches."""
    return batches.sweep_in(scopes.write, read=scopes.read)


@router.get(
    "/notifications", response_model=Page[NotificationRead], responses=problem_responses(401)
)
def list_notifications(
    session: DbSession, principal: CurrentPrincipal, page_query: PageInQuery, request: Request
) -> Page[NotificationRead]:
    """Your reminders; coordinators also see those of their regions, admins all. Newest first."""
    page = page_query.page(request)
    statement = repository.notifications_visible_to(principal)
    return paginate(
        session,
        statement,
        Notification.id,
        page,
        NotificationRead.model_validate,
        newest_first=True,
        count=True,
    )
