from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from app.common.concurrency import IfMatch, check_if_match, set_etag
from app.common.pagination import PageInQuery
from app.common.schemas import Page, problem_responses
from app.common.types import PathId
from app.deps import AdminOnly, DbSession, IdempotencyDep, OneHopRoute, Staff
from app.glossary import service as glossary_service
from app.glossary.schemas import GlossaryEntryCreate, GlossaryEntryRead, GlossaryEntryUpdate
from app.models import GlossaryEntry

router = APIRouter(route_class=OneHopRoute, prefix="/glossary", tags=["glossary"])


def get_entry(entry_id: PathId, session: DbSession, _staff: Staff) -> GlossaryEntry:
    return glossary_service.get(session, entry_id)


CurrentEntry = Annotated[GlossaryEntry, Depends(get_entry)]


@router.get("", response_model=Page[GlossaryEntryRead], responses=problem_responses(401, 403))
def list_entries(
    session: DbSession, _staff: Staff, page_query: PageInQuery, request: Request
) -> Page[GlossaryEntryRead]:
    """The admins' additions to the shipped glossary (staff)."""
    page = page_query.page(request)
    return glossary_service.list_(session, page=page)


@router.get(
    "/{entry_id}", response_model=GlossaryEntryRead, responses=problem_responses(401, 403, 404)
)
def read_entry(
    entry_id: PathId, session: DbSession, _staff: Staff, response: Response
) -> GlossaryEntryRead:
    # Loaded here, not through ``CurrentEntry``: a synchronous dependency is a worker-thread hop
    # of its own, and a read needs only the endpoint's (``OneHopRoute``).
    entry = glossary_service.get(session, entry_id)
    set_etag(response, entry.version)
    return glossary_service.read(entry)


@router.post(
    "",
    response_model=GlossaryEntryRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409),
)
def create_entry(
    data: GlossaryEntryCreate, session: DbSession, admin: AdminOnly, idem: IdempotencyDep
) -> object:
    """Add terms to a concept (admins); the next match run uses them."""
    if (replayed := idem.replay(data)) is not None:
        return replayed
    entry = glossary_service.create(session, principal=admin, **data.model_dump())
    return idem.store(data, glossary_service.read(entry))


@router.patch(
    "/{entry_id}",
    response_model=GlossaryEntryRead,
    responses=problem_responses(401, 403, 404, 412, 428),
)
def update_entry(
    data: GlossaryEntryUpdate,
    entry: CurrentEntry,
    session: DbSession,
    admin: AdminOnly,
    response: Response,
    if_match: IfMatch = None,
) -> GlossaryEntryRead:
    """Replace an entry's Chinese and/or English terms (admins)."""
    check_if_match(if_match, entry.version)
    updated = glossary_service.update(
        session, principal=admin, entry=entry, changes=data.model_dump(exclude_unset=True)
    )
    set_etag(response, updated.version)
    return glossary_service.read(updated)


@router.delete(
    "/{entry_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 412, 428),
)
def delete_entry(
    entry: CurrentEntry, session: DbSession, admin: AdminOnly, if_match: IfMatch = None
) -> None:
    """Withdraw an entry (admins); the next match run no longer uses its terms."""
    check_if_match(if_match, entry.version)
    glossary_service.delete(session, principal=admin, entry=entry)
