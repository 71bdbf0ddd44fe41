"""The audit trail: every change records who did what to which entity, before and after.

Callers pass the session of the change itself, so the event commits or rolls back with it.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.common.clock import utc_now
from app.models import Base, Event
from app.webhooks import service as webhook_service

_BOOKKEEPING = frozenset({"updated_at", "version"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def snapshot(obj: Base) -> dict[str, Any]:
    """Column values of a row as JSON-ready data (relationships are not followed)."""
    mapper = inspect(type(obj))
    return {c.key: _jsonable(getattr(obj, c.key)) for c in mapper.column_attrs}


def record(
    session: Session,
    *,
    actor: Principal | None,
    action: str,
    entity: Base,
    region_code: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> Event | None:
    """Append one event; ``after`` defaults to the entity's current snapshot.

    With ``before``, only the fields that changed are kept, and a change that changed nothing
    records nothing (returns None): the log says what happened, not what was attempted.
    """
    session.flush()
    changed_after = after if after is not None else snapshot(entity)
    if before is not None:
        changed_after = {k: v for k, v in changed_after.items() if before.get(k) != v}
        if not set(changed_after) - _BOOKKEEPING:
            return None
        before = {k: before.get(k) for k in changed_after}
    event = Event(
        actor_id=actor.user_id if actor else None,
        actor_label=actor.email if actor else "system",
        action=action,
        entity_type=type(entity).__tablename__,
        entity_id=getattr(entity, "id", None),
        region_code=region_code,
        before=before,
        after=changed_after,
        created_at=utc_now(),
    )
    session.add(event)
    webhook_service.enqueue(session, event)
    return event
