"""Queries over the audit log; ``visible_to`` is the one place its role scoping lives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, false, select

from app.common.principal import Principal
from app.common.regions import region_clause
from app.models import Event


def visible_to(principal: Principal) -> Select[Event]:
    """Coordinators read the audit trail of their regions; admins all of it."""
    statement = select(Event)
    if principal.is_admin:
        return statement
    if principal.is_coordinator:
        return statement.where(region_clause(Event.region_code, principal.region_prefixes))
    return statement.where(false())


@dataclass(frozen=True)
class EventFilter:
    action: str | None = None
    entity_type: str | None = None
    entity_id: int | None = None
    since: datetime | None = None


def filtered(statement: Select[Event], f: EventFilter) -> Select[Event]:
    if f.action:
        statement = statement.where(Event.action == f.action)
    if f.entity_type:
        statement = statement.where(Event.entity_type == f.entity_type)
    if f.entity_id is not None:
        statement = statement.where(Event.entity_id == f.entity_id)
    if f.since is not None:
        statement = statement.where(Event.created_at >= f.since)
    return statement
