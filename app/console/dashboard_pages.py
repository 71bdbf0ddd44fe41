"""The coordinator's dashboard: the API's statistics and supervision figures, drawn as SVG."""

from __future__ import annotations

from fastapi import APIRouter, Response
from markupsafe import Markup

from app.console import charts
from app.console.coordinator_pages import STAFF
from app.console.web import Ctx, PageCtx
from app.stats import service as stats_service
from app.stats.repository import StatsFilter
from app.stats.schemas import GroupBy, StatsGroup, StatsRead
from app.supervision import pages as supervision_pages

router = APIRouter(include_in_schema=False)
TOP_PROVIDERS = 15
GROUPS_PER_PAGE = 1000  # the dashboard's own page of category and city groups, not the API's cap


def _matched(ctx: Ctx, title: str, groups: list[StatsGroup], names: dict[str, str]) -> str:
    rows = [
        charts.Bar(
            names.get(g.key or "", g.key or "—"),
            (g.funnel.matched, max(0, g.funnel.submitted - g.funnel.matched)),
            f"{g.funnel.matched}/{g.funnel.submitted}",
        )
        for g in groups
    ]
    return charts.bars(title, rows, legend=(ctx._("Matched"), ctx._("Unmatched")))


def _satisfaction(title: str, groups: list[StatsGroup], names: dict[str, str]) -> str:
    rows = [
        charts.Bar(
            names.get(g.key or "", g.key or "—"),
            (100 * (g.rates.satisfaction.satisfied_share or 0.0),),
            f"{g.rates.satisfaction.satisfied_share or 0:.0%} ({g.rates.satisfaction.feedback})",
        )
        for g in groups
        if g.rates.satisfaction.feedback
    ]
    return charts.bars(title, rows, scale=100)


def _funnel(ctx: Ctx, stats: StatsRead) -> str:
    funnel = stats.total.funnel
    steps = [
        (ctx._("Submitted"), funnel.submitted),
        (ctx._("Matched"), funnel.matched),
        (ctx._("Accepted"), funnel.accepted),
        (ctx._("First follow-up"), funnel.first_follow_up),
        (ctx._("Resolved"), funnel.resolved),
    ]
    rows = [charts.Bar(label, (value,), str(value)) for label, value in steps]
    return charts.bars(ctx._("Funnel"), rows)


def _load(ctx: Ctx, busiest: list[stats_service.ProviderLoad]) -> str:
    rows = [
        charts.Bar(
            p.label or p.key,
            (p.load.open_assignments, max(0, p.load.capacity - p.load.open_assignments)),
            f"{p.load.open_assignments}/{p.load.capacity}",
        )
        for p in busiest
    ]
    return charts.bars(ctx._("Provider load"), rows, legend=(ctx._("Open"), ctx._("Free")))


@router.get("/coordinator/dashboard")
def dashboard(ctx: PageCtx) -> Response:
    principal = ctx.need(*STAFF)

    cache: stats_service.StatsCache = ctx.request.app.state.stats_cache

    def stats(group_by: GroupBy) -> StatsRead:
        """The API's figures, through the same per-process cache as ``GET /stats``, with every
        group (categories and cities: a few hundred at most, so one page in practice)."""
        pages: list[StatsRead] = []
        cursor: str | None = None
        while not pages or cursor is not None:
            found = stats_service.summarise(
                ctx.session,
                principal=principal,
                filters=StatsFilter(),
                group_by=group_by,
                page=stats_service.GroupPageParams(GROUPS_PER_PAGE, cursor),
                cache=cache,
            )
            pages.append(found)
            cursor = found.next_cursor
        first, groups = pages[0], [g for found in pages for g in found.groups]
        return first.model_copy(update={"groups": groups, "next_cursor": None})

    by_category, by_region = stats(GroupBy.CATEGORY), stats(GroupBy.REGION)
    busiest = stats_service.busiest_providers(
        ctx.session, principal=principal, filters=StatsFilter(), limit=TOP_PROVIDERS
    )
    names = ctx.category_names()
    backlog = supervision_pages.ageing(ctx.session, principal=principal)
    ageing = [charts.Bar(bucket, (n,), str(n)) for bucket, n in backlog.items()]
    svgs = {
        "funnel": _funnel(ctx, by_category),
        "ageing": charts.bars(ctx._("Open backlog by age"), ageing),
        "matched_category": _matched(ctx, ctx._("Matched by category"), by_category.groups, names),
        "matched_region": _matched(ctx, ctx._("Matched by region"), by_region.groups, {}),
        "satisfied_category": _satisfaction(
            ctx._("Satisfied by category"), by_category.groups, names
        ),
        "satisfied_region": _satisfaction(ctx._("Satisfied by region"), by_region.groups, {}),
        "load": _load(ctx, busiest),
    }
    return ctx.render(
        "coordinator/dashboard.html",
        stats=by_category,
        charts={key: Markup(svg) for key, svg in svgs.items()},
    )
