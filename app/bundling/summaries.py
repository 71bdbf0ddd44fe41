"""The plan's summary, written for people: its requests, who helps, which policies apply and
what comes next, in Chinese and English.

Generated for many plans at once (a publish refreshes thousands) from a few queries; a plan
whose summary a coordinator edited (``summary_edited``) keeps their words.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from app.bundling import repository
from app.common.clock import utc_now
from app.common.idsets import in_ids
from app.models import Assignment, Category, HelpRequest, Milestone, Plan, Provider, RequestStatus

SHOWN = 5  # at most this many requests, helpers or policies are named; the rest are counted
BATCH = 2000


@dataclass
class _Facts:
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # title, zh, en label
    helpers: dict[str, tuple[str, str]] = field(default_factory=dict)  # name → labels
    next_step: tuple[str, str, str, date | None] | None = None  # zh, en, owner, due


def _labels(session: Session) -> dict[str, tuple[str, str]]:
    return {
        k: (zh, en)
        for k, zh, en in session.execute(select(Category.key, Category.name_zh, Category.name_en))
    }


def _facts(session: Session, owners: Mapping[int, int]) -> dict[int, _Facts]:
    """plan id → what its summary says, for the plans ``owners`` maps (plan id → its
    enterprise's id)."""
    labels = _labels(session)
    facts: dict[int, _Facts] = defaultdict(_Facts)
    plan_ids = list(owners)
    of_plans = repository.request_of_plans(session, owners)
    requests = session.execute(
        select(HelpRequest.plan_id, HelpRequest.title, HelpRequest.category)
        .where(of_plans, HelpRequest.status != RequestStatus.WITHDRAWN)
        .order_by(HelpRequest.id)
    )
    for plan_id, title, category in requests:
        if plan_id is None:
            continue
        zh, en = labels.get(category, (category, category))
        facts[plan_id].requests.append((title, zh, en))
    helpers = session.execute(
        select(HelpRequest.plan_id, Provider.name, HelpRequest.category)
        .join(Assignment, Assignment.request_id == HelpRequest.id)
        .join(Provider, Provider.id == Assignment.provider_id)
        .where(of_plans, repository.live_assignment())
        .order_by(Assignment.id)
    )
    for plan_id, name, category in helpers:
        if plan_id is None:
            continue
        facts[plan_id].helpers.setdefault(name, labels.get(category, (category, category)))
    steps = session.execute(
        select(
            Milestone.plan_id,
            Milestone.title,
            Milestone.title_en,
            Milestone.owner,
            Milestone.due_date,
        )
        .where(in_ids(Milestone.plan_id, plan_ids), Milestone.done.is_(False))
        .order_by(
            Milestone.plan_id,
            Milestone.due_date.is_(None),
            Milestone.due_date,
            Milestone.position,
            Milestone.id,
        )
    )
    for plan_id, title, title_en, owner, due in steps:
        if facts[plan_id].next_step is None:
            facts[plan_id].next_step = (title, title_en or title, owner, due)
    return facts


def _named(items: list[str], sep: str, more: str) -> str:
    shown = sep.join(items[:SHOWN])
    return shown + (more.format(n=len(items) - SHOWN) if len(items) > SHOWN else "")


def compose(facts: _Facts, policies: list[dict[str, Any]]) -> tuple[str, str]:
    """(Chinese, English) summary of one plan."""
    zh: list[str] = []
    en: list[str] = []
    if facts.requests:
        zh.append(
            f"诉求{len(facts.requests)}项："
            + _named([f"{z}「{t}」" for t, z, _ in facts.requests], "；", "等（另{n}项）")
        )
        en.append(
            f"{len(facts.requests)} request(s): "
            + _named([f"{e} \u201c{t}\u201d" for t, _, e in facts.requests], "; ", " and {n} more")
        )
    if facts.helpers:
        zh.append(
            "帮扶方：" + _named([f"{n}（{z}）" for n, (z, _) in facts.helpers.items()], "、", "等")
        )
        en.append(
            "Helping: "
            + _named([f"{n} ({e})" for n, (_, e) in facts.helpers.items()], ", ", " and {n} more")
        )
    else:
        zh.append("帮扶方：待匹配")
        en.append("Helping: not matched yet")
    titles = [str(p.get("title", "")) for p in policies]
    if titles:
        zh.append(f"可享政策{len(titles)}项：" + _named([f"《{t}》" for t in titles], "、", "等"))
        en.append(
            f"{len(titles)} eligible polic{'y' if len(titles) == 1 else 'ies'}: "
            + _named(titles, "; ", " and {n} more")
        )
    if facts.next_step:
        title, title_en, owner, due = facts.next_step
        zh.append(
            f"下一步：{title}（{owner}，" + (f"{due.isoformat()}前）" if due else "日期待定）")
        )
        en.append(
            f"Next: {title_en} ({owner}, "
            + (f"due {due.isoformat()})" if due else "date to be set)")
        )
    return "。".join(zh) + "。", ". ".join(en) + "."


def generate(
    session: Session, policies: dict[int, list[dict[str, Any]]], owners: Mapping[int, int]
) -> dict[int, tuple[str, str]]:
    """plan id → (zh, en) for the plans in ``policies`` (plan id → its recommended policies);
    ``owners`` maps each of them (and maybe more) to its enterprise's id."""
    facts = _facts(session, {p: owners[p] for p in policies})
    return {plan_id: compose(facts[plan_id], wanted) for plan_id, wanted in policies.items()}


def refresh(session: Session, plan_ids: Sequence[int]) -> None:
    """Regenerate the summaries of those plans nobody edited by hand, bumping the version of
    each one that changed (a concurrent editor's If-Match goes stale)."""
    rows = session.execute(
        select(
            Plan.id, Plan.recommended_policies, Plan.summary, Plan.summary_en, Plan.enterprise_id
        ).where(in_ids(Plan.id, plan_ids), Plan.summary_edited.is_(False))
    ).all()
    current = {p: (zh, en) for p, _, zh, en, _ in rows}
    fresh = generate(
        session, {p: list(r or []) for p, r, _, _, _ in rows}, {p: e for p, *_, e in rows}
    )
    changed = [
        {"b_id": p, "b_zh": zh, "b_en": en}
        for p, (zh, en) in fresh.items()
        if current[p] != (zh, en)
    ]
    table = Plan.__table__
    assert isinstance(table, Table)
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            summary=bindparam("b_zh"),
            summary_en=bindparam("b_en"),
            version=table.c.version + 1,
            updated_at=utc_now(),
        )
    )
    for start in range(0, len(changed), BATCH):
        session.connection().execute(statement, changed[start : start + BATCH])
