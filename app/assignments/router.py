from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, Field

from app.assignments import repository
from app.assignments import service as assignment_service
from app.assignments.schemas import (
    AssignmentRead,
    Complete,
    Decline,
    FeedbackCreate,
    FeedbackRead,
    Lock,
    ManualAssign,
    Reassign,
)
from app.assignments.views import AssignmentView, assignment_view
from app.common.concurrency import set_etag
from app.common.pagination import PageQuery
from app.common.schemas import Page, problem_responses
from app.common.types import MAX_ID, PathId
from app.deps import CurrentPrincipal, DbSession, IdempotencyDep, OneHopRoute, Staff
from app.models import Assignment, AssignmentStatus

router = APIRouter(route_class=OneHopRoute, prefix="/assignments", tags=["assignments"])
ACTION_ERRORS = problem_responses(401, 403, 404, 409)


def get_assignment(
    assignment_id: PathId, session: DbSession, principal: CurrentPrincipal
) -> Assignment:
    return assignment_service.get(session, principal=principal, assignment_id=assignment_id)


CurrentAssignment = Annotated[Assignment, Depends(get_assignment)]


class AssignmentQuery(BaseModel):
    """The list's filters, as one query model (validated once per request)."""

    status: AssignmentStatus | None = None
    provider_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None
    request_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None
    match_run_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None

    def filter(self) -> repository.AssignmentFilter:
        return repository.AssignmentFilter(
            status=self.status,
            provider_id=self.provider_id,
            request_id=self.request_id,
            match_run_id=self.match_run_id,
        )


class AssignmentListQuery(AssignmentQuery, PageQuery):
    """A page of the list: ``limit`` and ``cursor`` first, then the filters."""


async def assignment_filter(
    query: Annotated[AssignmentQuery, Query()],
) -> repository.AssignmentFilter:
    """The list's filters, for the export of the same list."""
    return query.filter()


@router.get("", response_model=Page[AssignmentView], responses=problem_responses(401))
def list_assignments(
    session: DbSession,
    principal: CurrentPrincipal,
    query: Annotated[AssignmentListQuery, Query()],
    request: Request,
) -> Page[AssignmentView]:
    """Providers see their offers and work; enterprises theirs; coordinators their regions."""
    page = query.page(request)
    return assignment_service.list_(session, principal=principal, filters=query.filter(), page=page)


@router.post(
    "", response_model=AssignmentRead, status_code=status.HTTP_201_CREATED, responses=ACTION_ERRORS
)
def assign_by_hand(
    data: ManualAssign, session: DbSession, principal: Staff, idem: IdempotencyDep
) -> object:
    """Offer a request to a provider by hand (the hard rules and capacity still apply)."""
    if (replayed := idem.replay(data)) is not None:
        return replayed
    assignment = assignment_service.assign_by_hand(session, principal=principal, data=data)
    return idem.store(data, AssignmentRead.model_validate(assignment))


@router.get(
    "/{assignment_id}", response_model=AssignmentView, responses=problem_responses(401, 404)
)
def read_assignment(
    assignment_id: PathId, session: DbSession, principal: CurrentPrincipal, response: Response
) -> AssignmentView:
    # Loaded here, not through ``CurrentAssignment``: a synchronous dependency is a
    # worker-thread hop of its own, and a read needs only the endpoint's (``OneHopRoute``).
    assignment = assignment_service.get(session, principal=principal, assignment_id=assignment_id)
    set_etag(response, assignment.version)
    return assignment_view(principal, assignment)


# The answers load the offer in the endpoint's own hop, not through ``CurrentAssignment``: a
# synchronous dependency is a worker-thread hop of its own, and an answer is a third of the
# mix's writes.
@router.post("/{assignment_id}/accept", response_model=AssignmentView, responses=ACTION_ERRORS)
def accept(
    assignment_id: PathId, session: DbSession, principal: CurrentPrincipal
) -> AssignmentView:
    assignment = get_assignment(assignment_id, session, principal)
    accepted = assignment_service.accept(session, principal=principal, assignment=assignment)
    return assignment_view(principal, accepted)


@router.post("/{assignment_id}/decline", response_model=AssignmentView, responses=ACTION_ERRORS)
def decline(
    assignment_id: PathId, data: Decline, session: DbSession, principal: CurrentPrincipal
) -> AssignmentView:
    """Decline with a reason code; the request is offered to the next-best provider at once."""
    assignment = get_assignment(assignment_id, session, principal)
    declined = assignment_service.decline(
        session, principal=principal, assignment=assignment, data=data
    )
    return assignment_view(principal, declined)


@router.post("/{assignment_id}/complete", response_model=AssignmentView, responses=ACTION_ERRORS)
def complete(
    assignment: CurrentAssignment,
    session: DbSession,
    principal: CurrentPrincipal,
    data: Complete | None = None,
) -> AssignmentView:
    """The provider marks the work done; the enterprise then confirms and rates it."""
    done = assignment_service.complete(
        session,
        principal=principal,
        assignment=assignment,
        summary=data.summary if data is not None else "",
    )
    return assignment_view(principal, done)


@router.post("/{assignment_id}/lock", response_model=AssignmentRead, responses=ACTION_ERRORS)
def lock(
    data: Lock, assignment: CurrentAssignment, session: DbSession, principal: Staff
) -> Assignment:
    """Pin (or unpin) a pair: runs and re-matches keep it."""
    return assignment_service.set_lock(
        session, principal=principal, assignment=assignment, locked=data.locked
    )


@router.post(
    "/{assignment_id}/reassign", response_model=AssignmentRead | None, responses=ACTION_ERRORS
)
def reassign(
    data: Reassign, assignment: CurrentAssignment, session: DbSession, principal: Staff
) -> Assignment | None:
    """Cancel this pair and offer the request elsewhere (named provider, or the engine's pick)."""
    return assignment_service.reassign(
        session, principal=principal, assignment=assignment, data=data
    )


@router.post(
    "/{assignment_id}/feedback",
    response_model=FeedbackRead,
    status_code=status.HTTP_201_CREATED,
    responses=ACTION_ERRORS,
)
def rate(
    data: FeedbackCreate,
    assignment: CurrentAssignment,
    session: DbSession,
    principal: CurrentPrincipal,
    idem: IdempotencyDep,
) -> object:
    """The enterprise rates completed help 1–5; not satisfied reopens the request."""
    if (replayed := idem.replay(data)) is not None:
        return replayed
    feedback = assignment_service.rate(
        session, principal=principal, assignment=assignment, data=data
    )
    return idem.store(data, FeedbackRead.model_validate(feedback))
