"""Milestone templates: the steps a plan gets for each request of a category.

Every category has one (the migration gave each a default; a category created later starts
from :data:`GENERIC_STEPS`). Admins edit a template as a whole list, under If-Match, audited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.pagination import PageParams, paginate
from app.common.principal import Principal
from app.common.schemas import Page
from app.errors import NotFound
from app.events import service as event_service
from app.models import MilestoneTemplate
from app.taxonomy.schemas import TemplateStep

T = TypeVar("T")


def _step(zh: str, en: str, owner: str, clock: str, after: int = 0) -> dict[str, Any]:
    return {"title_zh": zh, "title_en": en, "owner": owner, "clock": clock, "after_days": after}


# What a category an admin adds starts with (the taxonomy's own defaults are migration data).
GENERIC_STEPS: list[dict[str, Any]] = [
    _step("需求诊断", "Needs diagnosis", "provider", "first_feedback"),
    _step("方案与实施", "Plan and delivery", "provider", "resolve"),
    _step("回访", "Follow-up visit", "coordinator", "resolve", 10),
]


def create_default(session: Session, category_key: str) -> MilestoneTemplate:
    template = MilestoneTemplate(category_key=category_key, steps=list(GENERIC_STEPS))
    session.add(template)
    session.flush()
    return template


def list_page(session: Session, *, page: PageParams, convert: Callable[[Any], T]) -> Page[T]:
    return paginate(
        session, select(MilestoneTemplate), MilestoneTemplate.id, page, convert, count=True
    )


def get(session: Session, category_key: str) -> MilestoneTemplate:
    template = session.scalar(
        select(MilestoneTemplate).where(MilestoneTemplate.category_key == category_key)
    )
    if template is None:
        raise NotFound(f"no milestone template for category {category_key}")
    return template


def steps_by_category(session: Session, keys: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """category key → its steps, in one query (publishing reads them for a whole draft)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = session.execute(
        select(MilestoneTemplate.category_key, MilestoneTemplate.steps).where(
            MilestoneTemplate.category_key.in_(wanted)
        )
    )
    return {key: list(steps or []) for key, steps in rows}


def update(
    session: Session, *, principal: Principal, category_key: str, steps: list[TemplateStep]
) -> MilestoneTemplate:
    """Replace the steps; plans already generated keep theirs (only new requests see it)."""
    template = get(session, category_key)
    new = [step.model_dump() for step in steps]
    if new == template.steps:
        return template  # nothing changed: no new version, no event
    before = {"steps": template.steps}
    template.steps = new
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="milestone_template.updated",
        entity=template,
        before=before,
        after={"steps": new, "version": template.version},
    )
    return template
