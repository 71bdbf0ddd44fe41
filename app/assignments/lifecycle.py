"""The compare-and-set status move every assignment change goes through.

``UPDATE ... WHERE status IN (allowed sources)`` plus a row-count check: of two racing clicks
exactly one wins and the other gets 409 (a read-check-write version gave 500s on PostgreSQL).
The UPDATE returns the moved row, so the object is fresh without a second read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.assignments.transitions import sources_of
from app.common.clock import utc_now
from app.common.principal import Principal
from app.enterprises.repository import region_of
from app.errors import Conflict
from app.events import service as event_service
from app.models import Assignment, AssignmentStatus


def move(
    session: Session,
    assignment: Assignment,
    *,
    to: AssignmentStatus,
    actor: Principal | None,
    action: str,
    region_code: str | None = None,
    **values: Any,
) -> Assignment:
    """Compare-and-set the status; 409 when someone else moved it first. ``region_code`` is
    the event's, when the caller already read it (else one more query)."""
    before = event_service.snapshot(assignment)
    moved = session.scalars(
        update(Assignment)
        .where(Assignment.id == assignment.id, Assignment.status.in_(sources_of(to)))
        .values(status=to, version=Assignment.version + 1, updated_at=utc_now(), **values)
        .returning(Assignment)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).one_or_none()
    if moved is None:
        session.refresh(assignment)
        raise Conflict(
            f"assignment {assignment.id} is {assignment.status.value}; it cannot become {to.value}",
            current_status=assignment.status.value,
        )
    event_service.record(
        session,
        actor=actor,
        action=action,
        entity=assignment,
        region_code=region_of(session, assignment) if region_code is None else region_code,
        before=before,
    )
    return assignment
