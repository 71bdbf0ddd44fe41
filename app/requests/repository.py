"""Queries over help requests; ``visible_to`` is the one place their role scoping lives."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, false, select

from app.common.principal import Principal
from app.common.regions import region_clause
from app.enterprises.repository import (
    PROVIDER_VISIBLE_STATUSES,
    where_enterprise,
)
from app.models import Assignment, Enterprise, HelpRequest


def visible_to(principal: Principal) -> Select[HelpRequest]:
    statement = select(HelpRequest).join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
    if principal.is_admin:
        return statement
    if principal.is_coordinator:
        return statement.where(region_clause(Enterprise.region_code, principal.region_prefixes))
    if principal.is_enterprise:
        return statement.where(HelpRequest.enterprise_id == principal.enterprise_id)
    if principal.is_provider:
        assigned = select(Assignment.request_id).where(
            Assignment.provider_id == principal.provider_id,
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


def filtered(statement: Select[HelpRequest], f: RequestFilter) -> Select[HelpRequest]:
    statement = where_enterprise(statement, region=f.region, industry=f.industry, tier=f.tier)
    if f.category:
        statement = statement.where(HelpRequest.category == f.category)
    if f.status:
        statement = statement.where(HelpRequest.status == f.status)
    if f.min_urgency:
        statement = statement.where(HelpRequest.urgency >= f.min_urgency)
    if f.enterprise_id:
        statement = statement.where(HelpRequest.enterprise_id == f.enterprise_id)
    if f.q:
        statement = statement.where(
            HelpRequest.title.icontains(f.q, autoescape=True)
            | HelpRequest.description.icontains(f.q, autoescape=True)
        )
    return statement
