"""The re-match mark of a request (``help_requests.rematch_requested_at``): what the worker's
drain (:mod:`app.assignments.rematch_queue`) re-matches.

Apart from the queue so that writing a re-match (:func:`app.assignments.rematch.apply`) can
hand back to the worker a request whose planned offer no longer fits, whichever path planned
it (the queue's drain, the sweep, an inline re-match).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.models import HelpRequest

MARKED = HelpRequest.rematch_requested_at.is_not(None)


def set_marks(
    session: Session, ids: list[int], value: datetime | None, *, failures: int = 0
) -> None:
    """One UPDATE for the requests' mark and failure count (a new mark and a re-match that
    went through start the count again); their loaded copies take them as committed state
    (no query to refresh them)."""
    if not ids:
        return
    session.execute(
        update(HelpRequest)
        .where(HelpRequest.id.in_(ids))
        .values(rematch_requested_at=value, rematch_failures=failures)
        .execution_options(synchronize_session=False)
    )
    for request_id in ids:
        loaded = session.identity_map.get(session.identity_key(HelpRequest, request_id))
        if loaded is not None:
            set_committed_value(loaded, "rematch_requested_at", value)
            set_committed_value(loaded, "rematch_failures", failures)
