from __future__ import annotations

from fastapi import APIRouter, status

from app.common.pagination import PageDep
from app.common.schemas import Page, problem_responses
from app.common.types import PathId, QueryId
from app.deps import DbSession, IdempotencyDep, OneHopRoute, Staff
from app.exclusions import service as exclusion_service
from app.exclusions.schemas import ExclusionCreate, ExclusionRead

router = APIRouter(route_class=OneHopRoute, prefix="/exclusions", tags=["exclusions"])


@router.get("", response_model=Page[ExclusionRead], responses=problem_responses(401, 403))
def list_exclusions(
    session: DbSession, principal: Staff, page: PageDep, provider_id: QueryId = None
) -> Page[ExclusionRead]:
    return exclusion_service.list_page(
        session, principal=principal, provider_id=provider_id, page=page
    )


@router.post(
    "",
    response_model=ExclusionRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409),
)
def forbid_pair(
    data: ExclusionCreate, session: DbSession, principal: Staff, idem: IdempotencyDep
) -> object:
    """Forbid a pair; an open offer of it is withdrawn and its request re-matched at once."""
    if (replayed := idem.replay(data)) is not None:
        return replayed
    exclusion = exclusion_service.forbid(session, principal=principal, data=data)
    return idem.store(data, ExclusionRead.model_validate(exclusion))


@router.delete(
    "/{exclusion_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
def lift_exclusion(exclusion_id: PathId, session: DbSession, principal: Staff) -> None:
    exclusion_service.lift(session, principal=principal, exclusion_id=exclusion_id)
