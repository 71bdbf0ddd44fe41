"""Re-matches left to the worker: a decline marks its request, the worker re-matches marks
in batches.

Inline, a decline's re-match cost ~60 ms of the request's CPU (a snapshot of the skilled
providers, the text model, the engine, the offers), 5–25× any other call; at 3 % of the load
it was a quarter of the server's CPU. Now the decline commits the declined offer, the
exclusion and the request's return to ``triaged`` with ``help_requests.rematch_requested_at``
set, and the worker (every poll) drains the marks: up to ``BATCH`` requests planned in a read
transaction (one snapshot and one text model for all of them), then written in a short
write transaction, as the sweep re-matches expired offers
(``app.supervision.batches._rematched``), with each request's run weights.

Exactly once with several workers: the write transaction locks the requests (in the global
order), and only requests whose mark is still the one the plan was made under are cleared
and offered (compare-and-set on the mark's time). Another worker that drained them first
cleared the mark; a decline since (a new mark) makes the plan stale and the next poll plans
again. What happened to a request meanwhile (withdrawn, resolved, offered by hand) is caught
by ``planned_apart``: it loses its mark and gets no offer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.assignments import rematch as rematch_service
from app.assignments import repository
from app.common.clock import as_utc, utc_now
from app.common.locking import lock_in_order
from app.models import HelpRequest

BATCH = 250  # requests per engine run: the snapshot and text model are the fixed cost
MARKED = HelpRequest.rematch_requested_at.is_not(None)
Transaction = Callable[[], AbstractContextManager[Session]]  # one short transaction per call


def mark(session: Session, request_ids: Iterable[int]) -> None:
    """Leave these requests to the worker's re-match, in the caller's transaction. A request
    already marked takes the new time: a plan made before this change must not apply."""
    ids = sorted(set(request_ids))
    if not ids:
        return
    session.flush()
    _set_mark(session, ids, utc_now())


def pending(session: Session) -> int:
    """Requests awaiting their re-match (a partial index holds exactly these)."""
    return int(session.scalar(select(func.count()).select_from(HelpRequest).where(MARKED)) or 0)


@dataclass(frozen=True)
class Batch:
    """A batch's engine decisions, and the mark each request had when they were made."""

    marks: dict[int, datetime]
    planned: list[rematch_service.Planned]


def plan_batch(session: Session, *, batch: int = BATCH) -> Batch | None:
    """The oldest ``batch`` marks and the engine's decisions for them; reads only. ``None``
    when nothing is marked (one indexed query: an idle poll costs no more)."""
    rows = session.execute(
        select(HelpRequest.id, HelpRequest.rematch_requested_at)
        .where(MARKED)
        .order_by(HelpRequest.rematch_requested_at, HelpRequest.id)
        .limit(batch)
    ).all()
    if not rows:
        return None
    marks = {int(i): as_utc(at) for i, at in rows if at is not None}
    return Batch(marks, rematch_service.plan(session, request_ids=marks))


def apply_batch(session: Session, planned: Batch) -> int:
    """Clear the marks still as planned and write those requests' offers, in the caller's
    (write) transaction; returns the requests this call took (cleared)."""
    ids = sorted(planned.marks)
    paths = session.execute(repository.request_paths(ids)).all()
    lock_in_order(  # before the mark's UPDATE: the offers lock enterprises and plans first
        session,
        enterprises=[p.enterprise_id for p in paths],
        plans=[p.plan_id for p in paths],
        requests=ids,
    )
    now_marked = session.execute(
        select(HelpRequest.id, HelpRequest.rematch_requested_at).where(
            HelpRequest.id.in_(ids), MARKED
        )
    ).all()
    ours = sorted(
        int(i) for i, at in now_marked if at is not None and as_utc(at) == planned.marks[int(i)]
    )
    if not ours:
        return 0
    _set_mark(session, ours, None)
    taken = set(ours)
    rematch_service.apply(
        session, [_only(g, taken) for g in planned.planned], actor=None, planned_apart=True
    )
    return len(ours)


def drain(
    read: Transaction, write: Transaction, *, batch: int = BATCH, most: int | None = None
) -> int:
    """Re-match marked requests a batch at a time until none is left (or ``most`` were
    taken); what the worker runs on every poll. Returns the requests taken."""
    done = 0
    while most is None or done < most:
        with read() as session:
            planned = plan_batch(session, batch=batch)
        if planned is None:
            return done
        with write() as session:
            taken = apply_batch(session, planned)
        done += taken
        if taken == 0:
            return done  # another worker took them, or they changed: the next poll re-plans
    return done


def _only(group: rematch_service.Planned, taken: set[int]) -> rematch_service.Planned:
    """The group's decisions for the requests this worker took, and nothing else."""
    result = group.result
    kept = dataclasses.replace(
        result,
        assignments=tuple(a for a in result.assignments if int(a.request) in taken),
        unmatched=tuple(u for u in result.unmatched if int(u.request) in taken),
    )
    decided = tuple(r for r in group.decided if r in taken)
    return dataclasses.replace(group, result=kept, decided=decided)


def _set_mark(session: Session, ids: list[int], value: datetime | None) -> None:
    """One UPDATE for the requests' mark; their loaded copies take it as committed state
    (no query to refresh them)."""
    session.execute(
        update(HelpRequest)
        .where(HelpRequest.id.in_(ids))
        .values(rematch_requested_at=value)
        .execution_options(synchronize_session=False)
    )
    for request_id in ids:
        loaded = session.identity_map.get(session.identity_key(HelpRequest, request_id))
        if loaded is not None:
            set_committed_value(loaded, "rematch_requested_at", value)
