"""Taking back many unanswered offers at once (the sweep's expiries, a pause's releases).

Row by row this was an event and a compare-and-set per offer, plus an exclusion and a
request update: about 20 ms an offer under load, 10 statements each. Here a batch is a
fixed number of statements whatever its size: the requests and offers are locked in the
global order (``app.common.locking``: request before assignment), one ``UPDATE ... WHERE
status = 'offered' RETURNING`` moves only the offers still unanswered (an offer accepted a
moment earlier is simply not returned: the provider's answer wins), one insert writes the
missing exclusions, one ``UPDATE`` reopens the requests, and the audit events (the same
before/after :func:`app.assignments.lifecycle.move` records) go in one executemany with their
webhook deliveries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from app.assignments import repository
from app.common.clock import utc_now
from app.common.locking import lock_in_order
from app.events import service as event_service
from app.events.service import Change
from app.models import Assignment, AssignmentStatus, Exclusion, HelpRequest
from app.models.base import table_of


def reopen_offers(
    session: Session,
    assignment_ids: Iterable[int],
    *,
    to: AssignmentStatus,
    action: str,
    reason: str,
) -> list[int]:
    """Move the offers among ``assignment_ids`` still offered to ``to``, exclude each pair
    from being proposed again, reopen their requests; returns the requests (one per offer
    moved, in assignment order), ready to be re-matched."""
    ids = sorted(set(assignment_ids))
    if not ids:
        return []
    session.flush()  # the statements below read and write past the ORM
    lock_in_order(
        session,
        requests=session.scalars(repository.requests_of(ids)).all(),
        assignments=ids,
    )
    before = {row.id: row for row in session.execute(repository.offered_with_region(ids))}
    now = utc_now()
    moved = session.execute(repository.move_offered(ids, to, now)).all()
    rows = sorted(((before[m.id], m) for m in moved if m.id in before), key=lambda r: r[0].id)
    pairs = [(old.request_id, old.provider_id) for old, _ in rows]
    _exclude(session, pairs, reason, now)
    request_ids = [request_id for request_id, _ in pairs]
    reopened = session.execute(repository.reopen_requests(request_ids, now)).all()
    event_service.record_many(
        session,
        actor=None,
        changes=(_moved(action, old, new) for old, new in rows),
    )
    sync_loaded(session, Assignment, [new for _, new in rows])
    sync_loaded(session, HelpRequest, reopened)
    return request_ids


def sync_loaded(session: Session, model: type[Any], rows: Sequence[Any]) -> None:
    """Loaded copies of rows a bulk UPDATE changed would be stale (status, version: a later
    flush would fail its version check): they take the ``RETURNING`` values as committed
    state, with no query. Only those rows: a caller's other objects may hold unflushed edits."""
    for row in rows:
        obj = session.identity_map.get(identity_key(model, row.id))
        if obj is not None:
            for key in ("status", "version", "updated_at"):
                set_committed_value(obj, key, getattr(row, key))


def _exclude(session: Session, pairs: list[tuple[int, int]], reason: str, now: Any) -> None:
    """Remember each (request, provider) pair not to propose again; pairs already excluded
    are left as they are (idempotent, like ``offers.exclude_pair``)."""
    if not pairs:
        return
    known = {(r, p) for r, p in session.execute(repository.excluded_pairs(pairs))}
    rows = [
        {
            "request_id": request_id,
            "provider_id": provider_id,
            "reason": reason[:500],
            "created_by_id": None,
            "created_at": now,
        }
        for request_id, provider_id in sorted(set(pairs) - known)
    ]
    if rows:
        session.execute(insert(table_of(Exclusion)), rows)


def _moved(action: str, old: Any, new: Any) -> Change:
    """The event ``move`` records for one row: the changed fields, before and after."""
    after = {"status": new.status.value, "version": new.version, "updated_at": new.updated_at}
    before = {"status": old.status.value, "version": old.version, "updated_at": old.updated_at}
    return Change(
        action=action,
        entity_type="assignments",
        entity_id=old.id,
        region_code=old.region_code or "",
        before={k: event_service.jsonable(v) for k, v in before.items()},
        after={k: event_service.jsonable(v) for k, v in after.items()},
    )
