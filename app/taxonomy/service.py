"""The help-category taxonomy: a table admins extend; requests and skills must use its keys."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.pagination import KeyPageParams, paginate_by_key
from app.common.principal import Principal
from app.common.schemas import Page
from app.errors import Conflict, InvalidInput, NotFound
from app.events import service as event_service
from app.models import Category
from app.taxonomy import templates
from app.taxonomy.schemas import CategoryRead


def ensure_known(session: Session, keys: Iterable[str], *, field: str) -> None:
    wanted = set(keys)
    if not wanted:
        return
    known = set(session.scalars(select(Category.key).where(Category.key.in_(wanted))))
    unknown = sorted(wanted - known)
    if unknown:
        raise InvalidInput(
            f"unknown category {', '.join(unknown)}; see GET /api/v1/categories", field=field
        )


def labels(session: Session) -> dict[str, tuple[str, str]]:
    """Category key → ``(name_zh, name_en)``: what every reason shows instead of the key."""
    rows = session.execute(select(Category.key, Category.name_zh, Category.name_en))
    return {key: (zh, en) for key, zh, en in rows}


def list_categories(session: Session) -> list[Category]:
    """All of them, for the engine and the console (the taxonomy is a curated, small table)."""
    return list(session.scalars(select(Category).order_by(Category.key)))


def page_categories(session: Session, *, page: KeyPageParams) -> Page[CategoryRead]:
    """The API's list: paged by key with the total, like every other list."""
    return paginate_by_key(
        session, select(Category), Category.key, page, CategoryRead.model_validate
    )


def create_category(
    session: Session,
    *,
    principal: Principal,
    key: str,
    name_zh: str,
    name_en: str,
    default_severity: str,
) -> Category:
    if session.get(Category, key) is not None:
        raise Conflict(f"category {key} exists", field="key")
    category = Category(
        key=key, name_zh=name_zh, name_en=name_en, default_severity=default_severity
    )
    session.add(category)
    session.flush()
    templates.create_default(session, key)
    event_service.record(session, actor=principal, action="category.created", entity=category)
    return category


def get_category(session: Session, key: str) -> Category:
    category = session.get(Category, key)
    if category is None:
        raise NotFound(f"category {key} not found")
    return category


def update_category(
    session: Session, *, principal: Principal, key: str, changes: dict[str, object]
) -> Category:
    category = get_category(session, key)
    before = event_service.snapshot(category)
    for name, value in changes.items():
        if value is not None:
            setattr(category, name, value)
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="category.updated",
        entity=category,
        before=before,
    )
    return category
