"""The supervision board's lists, each paged with the same keyset cursor and a total.

Each overdue list is a SQL filter (``clocks``: the clocks become a cut-off moment per clock
length), so a page reads ``limit`` rows and one count, however long the backlog is (one
board answered 8,749 items in a single body); ``total`` says how many there are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.common.pagination import PageParams
from app.common.principal import Principal
from app.common.schemas import Page
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


def overdue(
    session: Session,
    *,
    principal: Principal,
    region: str | None,
    which: OverdueList,
    page: PageParams,
    now: datetime | None = None,
) -> Page[Overdue]:
    now = now or utc_now()
    regions = _regions(principal, region)
    pages = {
        OverdueList.OFFERS: clocks.offers_page,
        OverdueList.FOLLOW_UPS: clocks.follow_ups_page,
        OverdueList.REQUESTS: clocks.requests_page,
    }[which]
    return pages(session, now, regions, page)


@dataclass
class BoardPage:
    overdue_offers: Page[Overdue]
    overdue_follow_ups: Page[Overdue]
    overdue_requests: Page[Overdue]
    paused_work: list[clocks.PausedWork]
    ageing: dict[str, int]
    generated_at: datetime


def board(
    session: Session, *, principal: Principal, region: str | None, page: PageParams
) -> BoardPage:
    """The first page of each list (or the page ``cursor`` names in each), with totals."""
    now = utc_now()
    lists = {
        which: overdue(session, principal=principal, region=region, which=which, page=page, now=now)
        for which in OverdueList
    }
    return BoardPage(
        overdue_offers=lists[OverdueList.OFFERS],
        overdue_follow_ups=lists[OverdueList.FOLLOW_UPS],
        overdue_requests=lists[OverdueList.REQUESTS],
        paused_work=clocks.paused_work(session, now.date(), _regions(principal, region)),
        ageing=clocks.ageing(session, now, _regions(principal, region)),
        generated_at=now,
    )


def ageing(session: Session, *, principal: Principal) -> dict[str, int]:
    """The open backlog by age in the caller's regions (the console's dashboard chart)."""
    return clocks.ageing(session, utc_now(), _regions(principal, None))
