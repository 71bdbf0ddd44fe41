"""The supervision board's lists, each paged with the same keyset cursor and a total.

Each overdue list is a SQL filter (``clocks``: the clocks become a cut-off moment per clock
length), so a page reads ``limit`` rows and one count, however long the backlog is (one
board answered 8,749 items in a single body); ``total`` says how many there are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from app.common.cache import TTLCache
from app.common.clock import utc_now
from app.common.pagination import PageParams
from app.common.principal import Principal
from app.common.schemas import Page
from app.common.workdays import local_date
from app.supervision import clocks
from app.supervision.clocks import Overdue


class OverdueList(StrEnum):
    OFFERS = "offers"
    FOLLOW_UPS = "follow-ups"
    REQUESTS = "requests"


def _regions(principal: Principal, region: str | None) -> clocks.Regions:
    if region:
        return (region,)
    return None if principal.is_admin else principal.region_prefixes


BoardCache = TTLCache[Any]  # totals and ageing per scope, for ``stats_cache_seconds``

_LISTS = {
    OverdueList.OFFERS: (clocks.offers_page, clocks.offers_total),
    OverdueList.FOLLOW_UPS: (clocks.follow_ups_page, clocks.follow_ups_total),
    OverdueList.REQUESTS: (clocks.requests_page, clocks.requests_total),
}


def overdue(
    session: Session,
    *,
    principal: Principal,
    region: str | None,
    which: OverdueList,
    page: PageParams,
    now: datetime | None = None,
    cache: BoardCache | None = None,
) -> Page[Overdue]:
    """One page, always read live; its ``total`` through ``cache`` when given.

    The page is a keyset read of ``limit`` rows. The total counts every open request of the
    scope (150k at province scale: seconds on SQLite), and a board polled by many
    coordinators would count it for each; deadlines run in days, so a total up to
    ``stats_cache_seconds`` old is shown, computed once per scope meanwhile.
    """
    regions = _regions(principal, region)
    return _overdue(session, regions=regions, which=which, page=page, now=now, cache=cache)


def _overdue(
    session: Session,
    *,
    regions: clocks.Regions,
    which: OverdueList,
    page: PageParams,
    now: datetime | None,
    cache: BoardCache | None,
) -> Page[Overdue]:
    now = now or utc_now()
    lister, total = _LISTS[which]
    if cache is None:
        return lister(session, now, regions, page)
    found = lister(session, now, regions, page, count=False)
    found.total = cache.get_or_compute((which.value, regions), lambda: total(session, now, regions))
    return found


def paused(
    session: Session,
    *,
    principal: Principal,
    region: str | None,
    page: PageParams,
    now: datetime | None = None,
    cache: BoardCache | None = None,
) -> Page[clocks.PausedWork]:
    """One page of the work of paused providers, read live; its total as :func:`overdue`
    gives its own (through ``cache`` when given)."""
    regions = _regions(principal, region)
    return _paused(session, regions=regions, page=page, now=now, cache=cache)


def _paused(
    session: Session,
    *,
    regions: clocks.Regions,
    page: PageParams,
    now: datetime | None,
    cache: BoardCache | None,
) -> Page[clocks.PausedWork]:
    now = now or utc_now()
    if cache is None:
        return clocks.paused_page(session, now, regions, page)
    found = clocks.paused_page(session, now, regions, page, count=False)
    found.total = cache.get_or_compute(
        ("paused", local_date(now), regions), lambda: clocks.paused_total(session, now, regions)
    )
    return found


@dataclass
class BoardPage:
    overdue_offers: Page[Overdue]
    overdue_follow_ups: Page[Overdue]
    overdue_requests: Page[Overdue]
    paused_work: Page[clocks.PausedWork]
    ageing: dict[str, int]
    generated_at: datetime


BoardPages = TTLCache[BoardPage]
BOARD_PAGES_KEPT = 128  # scopes × page sizes; an entry is at most four pages of ``limit`` items


def board_pages(ttl: float) -> BoardPages:
    """The whole-board cache: bounded, least recently stored first out."""
    return BoardPages(ttl, max_entries=BOARD_PAGES_KEPT)


def board(
    session: Session,
    *,
    principal: Principal,
    region: str | None,
    page: PageParams,
    cache: BoardCache | None = None,
    boards: BoardPages | None = None,
) -> BoardPage:
    """The first page of each list (or the page ``cursor`` names in each), with totals; the
    paused providers' work is paged the same way.

    Through ``boards`` when given: the board is polled by every coordinator's screen, and a
    live read is six statements and a calendar walk per item (9.6 ms of CPU a call at 2k).
    What it shows depends only on the regions read (the caller's, or the one region asked
    for inside them: :func:`_regions`) and the page, so that is the key; a coordinator never
    gets a board computed for other regions. It is up to ``board_cache_seconds`` old, and
    says so in ``generated_at``.
    """
    regions = _regions(principal, region)

    def compute() -> BoardPage:
        return _board(session, regions=regions, page=page, cache=cache)

    if boards is None:
        return compute()
    return boards.get_or_compute((regions, page.limit, page.after_id), compute)


def _board(
    session: Session, *, regions: clocks.Regions, page: PageParams, cache: BoardCache | None
) -> BoardPage:
    now = utc_now()
    lists = {
        which: _overdue(session, regions=regions, which=which, page=page, now=now, cache=cache)
        for which in OverdueList
    }
    aged: dict[str, int] = (
        cache.get_or_compute(("ageing", regions), lambda: clocks.ageing(session, now, regions))
        if cache is not None
        else clocks.ageing(session, now, regions)
    )
    return BoardPage(
        overdue_offers=lists[OverdueList.OFFERS],
        overdue_follow_ups=lists[OverdueList.FOLLOW_UPS],
        overdue_requests=lists[OverdueList.REQUESTS],
        paused_work=_paused(session, regions=regions, page=page, now=now, cache=cache),
        ageing=aged,
        generated_at=now,
    )


def ageing(session: Session, *, principal: Principal) -> dict[str, int]:
    """The open backlog by age in the caller's regions (the console's dashboard chart)."""
    return clocks.ageing(session, utc_now(), _regions(principal, None))
