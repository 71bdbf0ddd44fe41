"""Queries over providers; ``visible_to`` is the one place their role scoping lives.

Providers form one directory for all coordinators (a Beijing expert may help Fujian
remotely), so coordinators read every provider; editing is limited to their regions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, false, select

from app.common.principal import Principal
from app.common.shapes import Param, literal
from app.enterprises.repository import PROVIDER_VISIBLE_STATUSES
from app.models import Assignment, HelpRequest, Provider, ProviderConflict


def visible_to(principal: Principal, param: Param = literal) -> Select[Provider]:
    """The providers ``principal`` may see; its values go in through ``param``
    (``app.common.shapes``)."""
    statement = select(Provider)
    if principal.is_admin or principal.is_coordinator:
        return statement
    if principal.is_provider:
        return statement.where(Provider.id == param("scope_provider_id", principal.provider_id))
    if principal.is_enterprise:
        serving = (
            select(Assignment.provider_id)
            .join(HelpRequest, HelpRequest.id == Assignment.request_id)
            .where(
                HelpRequest.enterprise_id == param("scope_enterprise_id", principal.enterprise_id),
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

    def shape(self) -> tuple[bool | None, ...] | None:
        """Which filters :func:`filtered` applies; None with a text search, whose value is
        escaped into the statement (built per request)."""
        if self.q:
            return None
        # ``active`` itself: ``IS true`` takes no bound parameter, so its value is the shape's
        return (bool(self.kind), self.active, bool(self.home_region), bool(self.vetting))


def filtered(
    statement: Select[Provider], f: ProviderFilter, param: Param = literal
) -> Select[Provider]:
    """``statement`` narrowed by the filters given; each value but ``active`` (in the shape)
    is ``param`` of the filter's name (``vars(f)`` holds them all)."""
    if f.kind:
        statement = statement.where(Provider.kind == param("kind", f.kind))
    if f.active is not None:
        statement = statement.where(Provider.active.is_(f.active))
    if f.home_region:
        home = param("home_region", f.home_region)
        statement = statement.where(Provider.home_region_code.startswith(home))
    if f.vetting:
        statement = statement.where(Provider.vetting == param("vetting", f.vetting))
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
