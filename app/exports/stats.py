"""The stats export: ``GET /stats`` flattened, one row for the total and one per group (every
group, not a page: the groups arrive as a stream, so 35,000 provider groups are never all in
memory)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from app.exports.columns import Cell
from app.exports.labels import Labels
from app.stats.schemas import GroupBy, StatsGroup, StatsRead


@dataclass(frozen=True)
class StatColumn:
    zh: str
    en: str
    value: Callable[[StatsGroup], Cell]


def _rate(value: float | None) -> Cell:
    return None if value is None else round(value, 4)


COLUMNS: tuple[StatColumn, ...] = (
    StatColumn("提交", "Submitted", lambda g: g.funnel.submitted),
    StatColumn("已匹配", "Matched", lambda g: g.funnel.matched),
    StatColumn("已接受", "Accepted", lambda g: g.funnel.accepted),
    StatColumn("首次跟进", "First follow-up", lambda g: g.funnel.first_follow_up),
    StatColumn("已解决", "Resolved", lambda g: g.funnel.resolved),
    StatColumn(
        "匹配用时中位数(小时)",
        "Time to match, median (h)",
        lambda g: _rate(g.time_to_match_hours.median),
    ),
    StatColumn(
        "解决用时中位数(小时)",
        "Time to resolution, median (h)",
        lambda g: _rate(g.time_to_resolution_hours.median),
    ),
    StatColumn("已答复交办", "Offers answered", lambda g: g.rates.offers_answered),
    StatColumn("接受率", "Acceptance rate", lambda g: _rate(g.rates.acceptance_rate)),
    StatColumn("已办结", "Settled", lambda g: g.rates.settled),
    StatColumn("解决率", "Resolution rate", lambda g: _rate(g.rates.resolution_rate)),
    StatColumn("评价数", "Ratings", lambda g: g.rates.satisfaction.feedback),
    StatColumn("平均评分", "Mean rating", lambda g: _rate(g.rates.satisfaction.mean_rating)),
    StatColumn("满意率", "Satisfied share", lambda g: _rate(g.rates.satisfaction.satisfied_share)),
    StatColumn("服务方数", "Providers", lambda g: g.load.providers if g.load else None),
    StatColumn("总容量", "Capacity", lambda g: g.load.capacity if g.load else None),
    StatColumn("在办数", "Open assignments", lambda g: g.load.open_assignments if g.load else None),
    StatColumn("负荷率", "Utilisation", lambda g: _rate(g.load.utilisation) if g.load else None),
)


def headers(stats: StatsRead, labels: Labels) -> list[str]:
    zh = labels.lang == "zh"
    group = {
        None: ("范围", "Scope"),
        GroupBy.REGION: ("地市代码", "City code"),
        GroupBy.CATEGORY: ("类别", "Category"),
        GroupBy.TIER: ("培育层级", "Tier"),
        GroupBy.PROVIDER: ("服务方", "Provider"),
    }[stats.group_by]
    return [group[0] if zh else group[1], *(c.zh if zh else c.en for c in COLUMNS)]


def _key(stats: StatsRead, group: StatsGroup, labels: Labels) -> Cell:
    if group.key is None:
        return "合计" if labels.lang == "zh" else "Total"
    if stats.group_by is GroupBy.CATEGORY:
        return labels.category(group.key)
    if stats.group_by is GroupBy.TIER:
        return labels.word(group.key)
    if stats.group_by is GroupBy.PROVIDER and group.label:
        return group.label
    return group.key


def rows(stats: StatsRead, groups: Iterable[StatsGroup], labels: Labels) -> Iterator[list[Cell]]:
    """The total's row, then one per group as ``groups`` yields them."""
    for g in (stats.total, *stats.groups):
        yield [_key(stats, g, labels), *(c.value(g) for c in COLUMNS)]
    for g in groups:
        yield [_key(stats, g, labels), *(c.value(g) for c in COLUMNS)]
