"""Queries over help requests; ``visible_to`` is the one place their role scoping lives."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, false, select

from app.common.principal import Principal
from app.common.regions import region_clause
from app.common.shapes import Param, literal
from app.enterprises.repository import (
    PROVIDER_VISIBLE_STATUSES,
    where_enterprise,
)
from app.models import Assignment, Enterprise, HelpRequest


def visible_to(principal: Principal, param: Param = literal) -> Select[HelpRequest]:
    """The requests ``principal`` may see; its values go in through ``param``
    (``app.common.shapes``)."""
    statement = select(HelpRequest).join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
    if principal.is_admin:
        return statement
    if principal.is_coordinator:
        prefixes = principal.region_prefixes
        return statement.where(region_clause(Enterprise.region_code, prefixes, param))
    if principal.is_enterprise:
        own = param("scope_enterprise_id", principal.enterprise_id)
        return statement.where(HelpRequest.enterprise_id == own)
    if principal.is_provider:
        assigned = select(Assignment.request_id).where(
            Assignment.provider_id == param("scope_provider_id", principal.provider_id),
            Assignment.status.in_(PROVIDER_VISIBLE_STATUSES),
        )
        return statement.where(HelpRequest.id.in_(assigned))
    return statement.where(false())


@dataclass(frozen=True)
class RequestFilter:
    region: str | None = None
    industry: str | None = None
    category: str | None = None
    status: str | None = None
    tier: str | None = None
    min_urgency: int | None = None
    enterprise_id: int | None = None
    q: str | None = None

    def shape(self) -> tuple[bool, ...] | None:
        """Which filters :func:`filtered` applies; None with a text search, whose value is
        escaped into the statement (built per request)."""
        if self.q:
            return None
        given = (self.region, self.industry, self.category, self.status, self.tier)
        return (*map(bool, given), bool(self.min_urgency), bool(self.enterprise_id))


def filtered(
    statement: Select[HelpRequest], f: RequestFilter, param: Param = literal
) -> Select[HelpRequest]:
    """``statement`` narrowed by the filters given; each value is ``param`` of the filter's
    name (``vars(f)`` holds them all)."""
    statement = where_enterprise(
        statement, region=f.region, industry=f.industry, tier=f.tier, param=param
    )
    if f.category:
        statement = statement.where(HelpRequest.category == param("category", f.category))
    if f.status:
        statement = statement.where(HelpRequest.status == param("status", f.status))
    if f.min_urgency:
        statement = statement.where(HelpRequest.urgency >= param("min_urgency", f.min_urgency))
    if f.enterprise_id:
        wanted = param("enterprise_id", f.enterprise_id)
        statement = statement.where(HelpRequest.enterprise_id == wanted)
    if f.q:
        statement = statement.where(
            HelpRequest.title.icontains(f.q, autoescape=True)
            | HelpRequest.description.icontains(f.q, autoescape=True)
        )
    return statement
