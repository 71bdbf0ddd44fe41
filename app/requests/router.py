from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, Field

from app.common.concurrency import IfMatch, check_if_match, set_etag
from app.common.pagination import PageQuery
from app.common.principal import Principal
from app.common.schemas import Page, problem_responses
from app.common.types import MAX_ID, CategoryKey, IndustryPrefix, PathId, RegionPrefix
from app.deps import CurrentPrincipal, DbSession, IdempotencyDep, OneHopRoute, Staff, require_roles
from app.models import HelpRequest, RequestStatus, Role, Tier
from app.requests import repository, suggestions
from app.requests import service as request_service
from app.requests.schemas import (
    HelpRequestCreate,
    HelpRequestDetail,
    HelpRequestRead,
    HelpRequestUpdate,
    SuggestCategoryIn,
    SuggestCategoryRead,
)

router = APIRouter(route_class=OneHopRoute, prefix="/requests", tags=["help requests"])

Filer = Annotated[Principal, Depends(require_roles(Role.ENTERPRISE, Role.COORDINATOR, Role.ADMIN))]


def get_request(request_id: PathId, session: DbSession, principal: CurrentPrincipal) -> HelpRequest:
    return request_service.get(session, principal=principal, request_id=request_id)


CurrentRequest = Annotated[HelpRequest, Depends(get_request)]


class RequestQuery(BaseModel):
    """The list's filters, as one query model (validated once per request)."""

    region: RegionPrefix | None = None
    industry: IndustryPrefix | None = None
    category: CategoryKey | None = None
    status: RequestStatus | None = None
    tier: Tier | None = None
    min_urgency: Annotated[int | None, Field(ge=1, le=5)] = None
    enterprise_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None
    q: Annotated[str | None, Field(max_length=100)] = None

    def filter(self) -> repository.RequestFilter:
        return repository.RequestFilter(
            region=self.region,
            industry=self.industry,
            category=self.category,
            status=self.status,
            tier=self.tier,
            min_urgency=self.min_urgency,
            enterprise_id=self.enterprise_id,
            q=self.q,
        )


class RequestListQuery(RequestQuery, PageQuery):
    """A page of the list: ``limit`` and ``cursor`` first, then the filters."""


async def request_filter(query: Annotated[RequestQuery, Query()]) -> repository.RequestFilter:
    """The list's filters, for the export of the same list."""
    return query.filter()


@router.get("", response_model=Page[HelpRequestRead], responses=problem_responses(401))
def list_requests(
    session: DbSession,
    principal: CurrentPrincipal,
    query: Annotated[RequestListQuery, Query()],
    request: Request,
) -> Page[HelpRequestRead]:
    page = query.page(request)
    return request_service.list_(session, principal=principal, filters=query.filter(), page=page)


@router.post(
    "",
    response_model=HelpRequestRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409),
)
def submit_request(
    data: HelpRequestCreate, session: DbSession, principal: Filer, idem: IdempotencyDep
) -> object:
    """File a help request: an enterprise for itself, or staff on an enterprise's behalf."""
    if (replayed := idem.replay(data)) is not None:
        return replayed
    created = request_service.create(session, principal=principal, data=data)
    return idem.store(data, created)


@router.post(
    "/suggest-category", response_model=SuggestCategoryRead, responses=problem_responses(401)
)
def suggest_category(
    data: SuggestCategoryIn, session: DbSession, principal: CurrentPrincipal
) -> SuggestCategoryRead:
    """Rank every category for a problem described in free text (any logged-in user)."""
    ranked = suggestions.suggest(session, data.text)
    return SuggestCategoryRead.model_validate({"suggestions": ranked})


@router.get(
    "/{request_id}", response_model=HelpRequestDetail, responses=problem_responses(401, 404)
)
def read_request(
    request_id: PathId, session: DbSession, principal: CurrentPrincipal, response: Response
) -> HelpRequestDetail:
    """The request, and why the latest run and re-match left it unmatched (if they did)."""
    # Loaded here, not through ``CurrentRequest``: a synchronous dependency is a worker-thread
    # hop of its own, and a read needs only the endpoint's (``OneHopRoute``).
    found = request_service.detail(session, principal=principal, request_id=request_id)
    set_etag(response, found.version)
    return found


@router.patch(
    "/{request_id}",
    response_model=HelpRequestRead,
    responses=problem_responses(401, 403, 404, 409, 412, 428),
)
def update_request(
    data: HelpRequestUpdate,
    request: CurrentRequest,
    session: DbSession,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> HelpRequest:
    check_if_match(if_match, request.version)
    updated = request_service.update(session, principal=principal, request=request, data=data)
    set_etag(response, updated.version)
    return updated


@router.post(
    "/{request_id}/triage",
    response_model=HelpRequestRead,
    responses=problem_responses(401, 403, 404, 409),
)
def triage_request(
    data: HelpRequestUpdate, request: CurrentRequest, session: DbSession, principal: Staff
) -> HelpRequest:
    """Check and correct category, urgency and fields, and release the request for matching."""
    return request_service.triage(session, principal=principal, request=request, data=data)


@router.post(
    "/{request_id}/withdraw",
    response_model=HelpRequestRead,
    responses=problem_responses(401, 403, 404, 409),
)
def withdraw_request(
    request: CurrentRequest, session: DbSession, principal: CurrentPrincipal
) -> HelpRequest:
    return request_service.withdraw(session, principal=principal, request=request)


@router.post(
    "/{request_id}/unresolvable",
    response_model=HelpRequestRead,
    responses=problem_responses(401, 403, 404, 409),
)
def declare_unresolvable(
    request: CurrentRequest, session: DbSession, principal: Staff
) -> HelpRequest:
    """Settle a request that cannot be solved, so the enterprise's plan can close."""
    return request_service.declare_unresolvable(session, principal=principal, request=request)
