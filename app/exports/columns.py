"""The columns of each export: header (zh, en), the SQL expression, how a value is shown.

Exports select plain columns rather than ORM objects, so a batch of rows is a few tuples and
nothing lands in the session's identity map however many rows stream past.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement

from app.common.principal import Principal
from app.exports.labels import Labels
from app.models import (
    Assignment,
    Enterprise,
    Feedback,
    HelpRequest,
    Milestone,
    Plan,
    Provider,
)

Cell = str | int | float | None
Render = Callable[[Any, Labels], Cell]


def _plain(value: Any, labels: Labels) -> Cell:
    if value is None:
        return None
    if isinstance(value, bool):
        return labels.yes_no(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float | str):
        return value
    return str(value)


def _word(value: Any, labels: Labels) -> Cell:
    return labels.word(None if value is None else str(value))


def _category(value: Any, labels: Labels) -> Cell:
    return labels.category(value)


def _score(value: Any, labels: Labels) -> Cell:
    return None if value is None else round(float(value), 4)


def _codes(value: Any, labels: Labels) -> Cell:
    return ", ".join(str(v) for v in value or [])


def _skills(value: Any, labels: Labels) -> Cell:
    """``{"financing": 3}`` → ``融资 3`` so the reader never sees a category key."""
    items = sorted((value or {}).items())
    return "; ".join(f"{labels.category(key)} {level}" for key, level in items)


def _policies(value: Any, labels: Labels) -> Cell:
    return "; ".join(str(p.get("title", "")) for p in value or [] if isinstance(p, dict))


# Who must not see a column: the same need-to-know as the per-role response models
# (providers read an enterprise's contact card and a plan's head only; enterprises read a
# provider's card; neither reads draft-run or pin details of an assignment).
PROVIDER = frozenset({"provider"})
ENTERPRISE = frozenset({"enterprise"})
PARTIES = PROVIDER | ENTERPRISE


@dataclass(frozen=True)
class Column:
    zh: str
    en: str
    expr: Any
    render: Render = _plain
    hidden_from: frozenset[str] = frozenset()


def audience(principal: Principal) -> str:
    if principal.is_provider:
        return "provider"
    if principal.is_enterprise:
        return "enterprise"
    return "staff"


def visible(columns: Sequence[Column], principal: Principal) -> tuple[Column, ...]:
    who = audience(principal)
    return tuple(c for c in columns if who not in c.hidden_from)


def headers(columns: Sequence[Column], labels: Labels) -> list[str]:
    return [c.zh if labels.lang == "zh" else c.en for c in columns]


def render(columns: Sequence[Column], row: Sequence[Any], labels: Labels) -> list[Cell]:
    return [c.render(v, labels) for c, v in zip(columns, row, strict=True)]


REQUESTS: tuple[Column, ...] = (
    Column("编号", "ID", HelpRequest.id),
    Column("企业名称", "Enterprise", Enterprise.name),
    Column("统一社会信用代码", "USCC", Enterprise.uscc, hidden_from=PROVIDER),
    Column("行政区划代码", "Region code", Enterprise.region_code),
    Column("行业代码", "Industry code", Enterprise.industry_code),
    Column("培育层级", "Tier", Enterprise.tier, _word, hidden_from=PROVIDER),
    Column("类别", "Category", HelpRequest.category, _category),
    Column("标题", "Title", HelpRequest.title),
    Column("描述", "Description", HelpRequest.description),
    Column("紧急程度", "Urgency", HelpRequest.urgency),
    Column("严重程度", "Severity", HelpRequest.severity, _word),
    Column("期望解决日期", "Wanted by", HelpRequest.wanted_by_date),
    Column("所需服务方数", "Providers wanted", HelpRequest.providers_wanted),
    Column("状态", "Status", HelpRequest.status, _word),
    Column("提交时间(UTC)", "Submitted at (UTC)", HelpRequest.created_at),
    Column("解决时间(UTC)", "Resolved at (UTC)", HelpRequest.resolved_at),
    Column("服务方案编号", "Plan ID", HelpRequest.plan_id),
    Column("方案摘要", "Plan summary", Plan.summary, hidden_from=PROVIDER),
)

ASSIGNMENTS: tuple[Column, ...] = (
    Column("编号", "ID", Assignment.id),
    Column("诉求编号", "Request ID", Assignment.request_id),
    Column("诉求标题", "Request title", HelpRequest.title),
    Column("类别", "Category", HelpRequest.category, _category),
    Column("企业名称", "Enterprise", Enterprise.name),
    Column("行政区划代码", "Region code", Enterprise.region_code),
    Column("服务方编号", "Provider ID", Assignment.provider_id),
    Column("服务方", "Provider", Provider.name),
    Column("服务方类型", "Provider kind", Provider.kind, _word),
    Column("状态", "Status", Assignment.status, _word),
    Column("来源", "Origin", Assignment.origin, _word),
    Column("匹配运行编号", "Match run ID", Assignment.match_run_id, hidden_from=PARTIES),
    Column("匹配得分", "Score", Assignment.score, _score),
    Column("已锁定", "Locked", Assignment.locked, hidden_from=PARTIES),
    Column("交办时间(UTC)", "Offered at (UTC)", Assignment.offered_at),
    Column("答复期限(UTC)", "Answer due (UTC)", Assignment.offer_expires_at),
    Column("答复时间(UTC)", "Answered at (UTC)", Assignment.responded_at),
    Column("婉拒原因代码", "Decline reason code", Assignment.decline_reason_code),
    Column("婉拒说明", "Decline reason", Assignment.decline_reason),
    Column("完成时间(UTC)", "Completed at (UTC)", Assignment.completed_at),
    Column("完成情况", "Completion summary", Assignment.completion_summary),
    Column("服务方案编号", "Plan ID", HelpRequest.plan_id),
    Column("评分", "Rating", Feedback.rating),
    Column("满意", "Satisfied", Feedback.satisfied),
    Column("评价", "Feedback comment", Feedback.comment),
)


def _count_of(column: Any, where: ColumnElement[bool]) -> Any:
    return select(func.count(column)).where(where).correlate(Plan).scalar_subquery()


def _next_milestone(column: Any) -> Any:
    """The first open milestone's ``column``, in the order the plan shows them."""
    return (
        select(column)
        .where(Milestone.plan_id == Plan.id, Milestone.done.is_(False))
        .order_by(
            Milestone.due_date.is_(None), Milestone.due_date, Milestone.position, Milestone.id
        )
        .limit(1)
        .correlate(Plan)
        .scalar_subquery()
    )


PLANS: tuple[Column, ...] = (
    Column("编号", "ID", Plan.id),
    Column("企业名称", "Enterprise", Enterprise.name),
    Column("统一社会信用代码", "USCC", Enterprise.uscc, hidden_from=PROVIDER),
    Column("行政区划代码", "Region code", Enterprise.region_code),
    Column("状态", "Status", Plan.status, _word),
    Column("方案摘要", "Plan summary", Plan.summary, hidden_from=PROVIDER),
    Column("方案摘要(英文)", "Plan summary (English)", Plan.summary_en, hidden_from=PROVIDER),
    Column(
        "诉求数",
        "Requests",
        _count_of(HelpRequest.id, HelpRequest.plan_id == Plan.id),
        hidden_from=PROVIDER,
    ),
    Column(
        "里程碑数",
        "Milestones",
        _count_of(Milestone.id, Milestone.plan_id == Plan.id),
        hidden_from=PROVIDER,
    ),
    Column(
        "已完成里程碑",
        "Milestones done",
        _count_of(Milestone.id, (Milestone.plan_id == Plan.id) & Milestone.done.is_(True)),
        hidden_from=PROVIDER,
    ),
    Column("下一里程碑", "Next milestone", _next_milestone(Milestone.title), hidden_from=PROVIDER),
    Column(
        "下一里程碑(英文)",
        "Next milestone (English)",
        _next_milestone(Milestone.title_en),
        hidden_from=PROVIDER,
    ),
    Column(
        "下一里程碑期限",
        "Next milestone due",
        _next_milestone(Milestone.due_date),
        hidden_from=PROVIDER,
    ),
    Column(
        "推荐政策",
        "Recommended policies",
        Plan.recommended_policies,
        _policies,
        hidden_from=PROVIDER,
    ),
    Column("版本", "Version", Plan.version),
    Column("创建时间(UTC)", "Created at (UTC)", Plan.created_at),
    Column("更新时间(UTC)", "Updated at (UTC)", Plan.updated_at),
    Column("关闭时间(UTC)", "Closed at (UTC)", Plan.closed_at),
)

PROVIDERS: tuple[Column, ...] = (
    Column("编号", "ID", Provider.id),
    Column("类型", "Kind", Provider.kind, _word),
    Column("名称", "Name", Provider.name),
    Column("所属单位", "Organisation", Provider.organisation),
    Column("专长", "Expertise", Provider.expertise),
    Column("服务类别", "Skills", Provider.skills, _skills, hidden_from=ENTERPRISE),
    Column("服务行业", "Industries served", Provider.industries, _codes, hidden_from=ENTERPRISE),
    Column("服务地区", "Regions served", Provider.regions, _codes, hidden_from=ENTERPRISE),
    Column("所在地区", "Home region", Provider.home_region_code, hidden_from=ENTERPRISE),
    Column("可远程", "Remote OK", Provider.remote_ok, hidden_from=ENTERPRISE),
    Column("容量", "Capacity", Provider.capacity, hidden_from=ENTERPRISE),
    Column("启用", "Active", Provider.active, hidden_from=ENTERPRISE),
    Column("暂停开始", "Paused from", Provider.paused_from_date, hidden_from=ENTERPRISE),
    Column("暂停结束", "Paused until", Provider.paused_until_date, hidden_from=ENTERPRISE),
    Column("评分", "Rating", Provider.rating, _score),
    Column("评价数", "Ratings", Provider.rating_count),
    Column("联系邮箱", "Contact e-mail", Provider.contact_email),
    Column("联系电话", "Contact phone", Provider.contact_phone),
)
