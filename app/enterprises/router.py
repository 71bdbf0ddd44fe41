from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, Field

from app.common.concurrency import IfMatch, check_if_match, set_etag
from app.common.pagination import PageQuery
from app.common.schemas import Page, StaffDecision, problem_responses
from app.common.types import IndustryPrefix, PathId, RegionPrefix
from app.deps import CurrentPrincipal, DbSession, IdempotencyDep, OneHopRoute, Staff
from app.enterprises import repository
from app.enterprises import service as enterprise_service
from app.enterprises import tier as tier_service
from app.enterprises.schemas import (
    EnterpriseCreate,
    EnterpriseRead,
    EnterpriseUpdate,
    EnterpriseView,
    enterprise_view,
)
from app.models import Enterprise, EnterpriseSize, Tier

router = APIRouter(route_class=OneHopRoute, prefix="/enterprises", tags=["enterprises"])


def get_enterprise(
    enterprise_id: PathId, session: DbSession, principal: CurrentPrincipal
) -> Enterprise:
    return enterprise_service.get(session, principal=principal, enterprise_id=enterprise_id)


CurrentEnterprise = Annotated[Enterprise, Depends(get_enterprise)]


class EnterpriseQuery(BaseModel):
    """The list's filters, as one query model (validated once per request)."""

    region: Annotated[RegionPrefix | None, Field(description="Region code prefix")] = None
    industry: Annotated[IndustryPrefix | None, Field(description="Industry code prefix")] = None
    tier: Tier | None = None
    size: EnterpriseSize | None = None
    q: Annotated[str | None, Field(max_length=100, description="Name contains, or exact USCC")] = (
        None
    )


class EnterpriseListQuery(EnterpriseQuery, PageQuery):
    """A page of the list: ``limit`` and ``cursor`` first, then the filters."""


@router.get("", response_model=Page[EnterpriseView], responses=problem_responses(401))
def list_enterprises(
    session: DbSession,
    principal: CurrentPrincipal,
    query: Annotated[EnterpriseListQuery, Query()],
    request: Request,
) -> Page[EnterpriseView]:
    """Enterprises you may see: your own, those in your regions, or those you serve."""
    filters = repository.EnterpriseFilter(
        region=query.region, industry=query.industry, tier=query.tier, size=query.size, q=query.q
    )
    return enterprise_service.list_(
        session, principal=principal, filters=filters, page=query.page(request)
    )


@router.post(
    "",
    response_model=EnterpriseRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409),
)
def create_enterprise(
    data: EnterpriseCreate, session: DbSession, principal: Staff, idem: IdempotencyDep
) -> object:
    """Register an enterprise on its behalf (coordinators, in their regions)."""
    if (replayed := idem.replay(data)) is not None:
        return replayed
    enterprise = enterprise_service.create(session, principal=principal, data=data)
    return idem.store(data, EnterpriseRead.model_validate(enterprise))


@router.get(
    "/{enterprise_id}", response_model=EnterpriseView, responses=problem_responses(401, 404)
)
def read_enterprise(
    enterprise_id: PathId, session: DbSession, principal: CurrentPrincipal, response: Response
) -> EnterpriseView:
    """A provider serving the enterprise reads its contact card, not its registry record."""
    # Loaded here, not through ``CurrentEnterprise``: a synchronous dependency is a
    # worker-thread hop of its own, and a read needs only the endpoint's (``OneHopRoute``).
    enterprise = enterprise_service.get(session, principal=principal, enterprise_id=enterprise_id)
    set_etag(response, enterprise.version)
    return enterprise_view(principal, enterprise)


@router.patch(
    "/{enterprise_id}",
    response_model=EnterpriseRead,
    responses=problem_responses(401, 403, 404, 409, 412, 428),
)
def update_enterprise(
    data: EnterpriseUpdate,
    enterprise: CurrentEnterprise,
    session: DbSession,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> Enterprise:
    check_if_match(if_match, enterprise.version)
    updated = enterprise_service.update(
        session, principal=principal, enterprise=enterprise, data=data
    )
    set_etag(response, updated.version)
    return updated


@router.post(
    "/{enterprise_id}/tier-verification",
    response_model=EnterpriseRead,
    responses=problem_responses(401, 403, 404, 409),
)
def verify_tier(
    data: StaffDecision, enterprise: CurrentEnterprise, session: DbSession, principal: Staff
) -> Enterprise:
    """Verify or reject the tier the enterprise claims (coordinators of its region, admins);
    until verified, policy eligibility and priority use the verified tier."""
    return tier_service.decide(session, principal=principal, enterprise=enterprise, data=data)
