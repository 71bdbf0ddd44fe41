from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.common.pagination import PageDep, paginate
from app.common.schemas import Page, problem_responses
from app.common.types import BoundedDateTime, QueryId
from app.deps import DbSession, OneHopRoute, Staff
from app.events import repository
from app.events.schemas import EventRead
from app.models import Event

router = APIRouter(route_class=OneHopRoute, prefix="/events", tags=["audit"])


async def event_filter(
    action: Annotated[
        str | None, Query(max_length=60, description="e.g. assignment.declined")
    ] = None,
    entity_type: Annotated[str | None, Query(max_length=40)] = None,
    entity_id: QueryId = None,
    since: Annotated[BoundedDateTime | None, Query()] = None,
) -> repository.EventFilter:
    return repository.EventFilter(
        action=action, entity_type=entity_type, entity_id=entity_id, since=since
    )


@router.get("", response_model=Page[EventRead], responses=problem_responses(401, 403))
def list_events(
    session: DbSession,
    principal: Staff,
    page: PageDep,
    filters: Annotated[repository.EventFilter, Depends(event_filter)],
) -> Page[EventRead]:
    """The append-only audit log: who changed what, before and after; paged with the total
    of what the filters select."""
    statement = repository.filtered(repository.visible_to(principal), filters)
    return paginate(session, statement, Event.id, page, EventRead.model_validate, count=True)
