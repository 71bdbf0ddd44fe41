from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.common.concurrency import IfMatch, check_if_match, set_etag
from app.common.pagination import PageDep
from app.common.schemas import Page, problem_responses
from app.common.types import PathId
from app.deps import AdminOnly, CurrentPrincipal, DbSession, IdempotencyDep, OneHopRoute
from app.models import Policy
from app.policies import service as policy_service
from app.policies.schemas import PolicyCreate, PolicyRead, PolicyUpdate

router = APIRouter(route_class=OneHopRoute, prefix="/policies", tags=["policies"])


def get_policy(policy_id: PathId, session: DbSession, _principal: CurrentPrincipal) -> Policy:
    return policy_service.get(session, policy_id=policy_id)


CurrentPolicy = Annotated[Policy, Depends(get_policy)]


async def policy_filter(
    valid_on: Annotated[
        date | None, Query(description="Only policies in force on this date")
    ] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> policy_service.PolicyFilter:
    return policy_service.PolicyFilter(valid_on=valid_on, q=q)


@router.get("", response_model=Page[PolicyRead], responses=problem_responses(401))
def list_policies(
    session: DbSession,
    _principal: CurrentPrincipal,
    page: PageDep,
    filters: Annotated[policy_service.PolicyFilter, Depends(policy_filter)],
) -> Page[PolicyRead]:
    return policy_service.list_(session, filters=filters, page=page)


@router.post(
    "",
    response_model=PolicyRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403),
)
def create_policy(
    data: PolicyCreate, session: DbSession, admin: AdminOnly, idem: IdempotencyDep
) -> object:
    if (replayed := idem.replay(data)) is not None:
        return replayed
    policy = policy_service.create(session, principal=admin, data=data)
    return idem.store(data, PolicyRead.model_validate(policy))


@router.get("/{policy_id}", response_model=PolicyRead, responses=problem_responses(401, 404))
def read_policy(
    policy_id: PathId, session: DbSession, _principal: CurrentPrincipal, response: Response
) -> Policy:
    # Loaded here, not through ``CurrentPolicy``: a synchronous dependency is a worker-thread hop
    # of its own, and a read needs only the endpoint's (``OneHopRoute``).
    policy = policy_service.get(session, policy_id=policy_id)
    set_etag(response, policy.version)
    return policy


@router.patch(
    "/{policy_id}",
    response_model=PolicyRead,
    responses=problem_responses(401, 403, 404, 409, 412, 428),
)
def update_policy(
    data: PolicyUpdate,
    policy: CurrentPolicy,
    session: DbSession,
    admin: AdminOnly,
    response: Response,
    if_match: IfMatch = None,
) -> Policy:
    check_if_match(if_match, policy.version)
    updated = policy_service.update(session, principal=admin, policy=policy, data=data)
    set_etag(response, updated.version)
    return updated
