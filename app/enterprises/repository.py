"""Queries over enterprises; ``visible_to`` is the one place their role scoping lives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, false, or_, select
from sqlalchemy.orm import Session

from app.common.principal import Principal
from app.common.regions import region_clause
from app.common.shapes import Param, literal
from app.models import Assignment, AssignmentStatus, Enterprise, HelpRequest, Plan

# An assignment in one of these states lets its provider see the enterprise it serves.
PROVIDER_VISIBLE_STATUSES = (
    AssignmentStatus.OFFERED,
    AssignmentStatus.ACCEPTED,
    AssignmentStatus.ACTIVE,
    AssignmentStatus.COMPLETED,
)


def region_of(session: Session, row: Enterprise | HelpRequest | Assignment | Plan | int) -> str:
    """The region a row lies in ("" if its enterprise is gone): its enterprise's region code,
    what coordinators' scopes and audit events are keyed on. An ``int`` is an enterprise id.

    The one answer to "what region is this row in"; an assignment is one join away (its
    request's enterprise), everything else carries its enterprise id.
    """
    if isinstance(row, Enterprise):
        return row.region_code
    if isinstance(row, Assignment):
        code = session.scalar(
            select(Enterprise.region_code)
            .join(HelpRequest, HelpRequest.enterprise_id == Enterprise.id)
            .where(HelpRequest.id == row.request_id)
        )
        return code or ""
    enterprise = session.get(Enterprise, row if isinstance(row, int) else row.enterprise_id)
    return enterprise.region_code if enterprise else ""


def served_enterprise_ids(provider_id: int, param: Param = literal) -> Select[int]:
    return (
        select(HelpRequest.enterprise_id)
        .join(Assignment, Assignment.request_id == HelpRequest.id)
        .where(
            Assignment.provider_id == param("scope_provider_id", provider_id),
            Assignment.status.in_(PROVIDER_VISIBLE_STATUSES),
        )
    )


def visible_to(principal: Principal, param: Param = literal) -> Select[Enterprise]:
    """The enterprises ``principal`` may see; its values go in through ``param``
    (``app.common.shapes``)."""
    statement = select(Enterprise)
    if principal.is_admin:
        return statement
    if principal.is_coordinator:
        prefixes = principal.region_prefixes
        return statement.where(region_clause(Enterprise.region_code, prefixes, param))
    if principal.is_enterprise:
        return statement.where(
            Enterprise.id == param("scope_enterprise_id", principal.enterprise_id)
        )
    if principal.is_provider and principal.provider_id is not None:
        served = served_enterprise_ids(principal.provider_id, param)
        return statement.where(Enterprise.id.in_(served))
    return statement.where(false())


@dataclass(frozen=True)
class EnterpriseFilter:
    region: str | None = None
    industry: str | None = None
    tier: str | None = None
    size: str | None = None
    q: str | None = None

    def shape(self) -> tuple[bool, ...] | None:
        """Which filters :func:`filtered` applies; None with a text search, whose value is
        escaped into the statement (built per request)."""
        if self.q:
            return None
        return (bool(self.region), bool(self.industry), bool(self.tier), bool(self.size))


S = TypeVar("S", bound=Select[Any])


def where_enterprise(
    statement: S,
    *,
    region: str | None,
    industry: str | None,
    tier: str | None,
    param: Param = literal,
) -> S:
    """Narrow any statement joined to ``Enterprise`` by region and industry prefix and tier
    (``param`` ``region``, ``industry``, ``tier``)."""
    if region:
        statement = statement.where(Enterprise.region_code.startswith(param("region", region)))
    if industry:
        prefix = param("industry", industry)
        statement = statement.where(Enterprise.industry_code.startswith(prefix))
    if tier:
        statement = statement.where(Enterprise.tier == param("tier", tier))
    return statement


def filtered(
    statement: Select[Enterprise], f: EnterpriseFilter, param: Param = literal
) -> Select[Enterprise]:
    """``statement`` narrowed by the filters given; each value is ``param`` of the filter's
    name (``vars(f)`` holds them all)."""
    statement = where_enterprise(
        statement, region=f.region, industry=f.industry, tier=f.tier, param=param
    )
    if f.size:
        statement = statement.where(Enterprise.size == param("size", f.size))
    if f.q:
        statement = statement.where(
            or_(Enterprise.name.icontains(f.q, autoescape=True), Enterprise.uscc == f.q.upper())
        )
    return statement
