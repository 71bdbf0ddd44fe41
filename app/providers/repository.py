"""Queries over providers; ``visible_to`` is the one place their role scoping lives.

Providers form one directory for all coordinators (a Beijing expert may help Fujian
remotely), so coordinators read every provider; editing is limited to their regions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, false, select

from app.common.principal import Principal
from app.enterprises.repository import PROVIDER_VISIBLE_STATUSES
from app.models import Assignment, HelpRequest, Provider, ProviderConflict


def visible_to(principal: Principal) -> Select[Provider]:
    statement = select(Provider)
    if principal.is_admin or principal.is_coordinator:
        return statement
    if principal.is_provider:
        return statement.where(Provider.id == principal.provider_id)
    if principal.is_enterprise:
        serving = (
            select(Assignment.provider_id)
            .join(HelpRequest, HelpRequest.id == Assignment.request_id)
            .where(
                HelpRequest.enterprise_id == principal.enterprise_id,
                Assignment.status.in_(PROVIDER_VISIBLE_STATUSES),
            )
        )
        return statement.where(Provider.id.in_(serving))
    return statement.where(false())


@dataclass(frozen=True)
class ProviderFilter:
    kind: str | None = None
    active: bool | None = None
    home_region: str | None = None
    q: str | None = None
    vetting: str | None = None


def filtered(statement: Select[Provider], f: ProviderFilter) -> Select[Provider]:
    if f.kind:
        statement = statement.where(Provider.kind == f.kind)
    if f.active is not None:
        statement = statement.where(Provider.active.is_(f.active))
    if f.home_region:
        statement = statement.where(Provider.home_region_code.startswith(f.home_region))
    if f.vetting:
        statement = statement.where(Provider.vetting == f.vetting)
    if f.q:
        statement = statement.where(
            Provider.name.icontains(f.q, autoescape=True)
            | Provider.expertise.icontains(f.q, autoescape=True)
        )
    return statement


def conflicts_of(provider_id: int) -> Select[ProviderConflict]:
    return (
        select(ProviderConflict)
        .where(ProviderConflict.provider_id == provider_id)
        .order_by(ProviderConflict.enterprise_id)
    )
