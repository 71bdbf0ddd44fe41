"""Re-matches left to the worker: a decline marks its request, the worker re-matches marks
in batches.

Inline, a decline's re-match cost ~60 ms of the request's CPU (a snapshot of the skilled
providers, the text model, the engine, the offers), 5–25× any other call; at 3 % of the load
it was a quarter of the server's CPU. Now the decline commits the declined offer, the
exclusion and the request's return to ``triaged`` with ``help_requests.rematch_requested_at``
set, and the worker (every poll) drains the marks: up to ``BATCH`` requests planned in a read
transaction (one snapshot for all of them; each request decided with the text model of its
own category set, as it would be alone: :mod:`app.assignments.rematch`), then written in a
short write transaction, as the sweep re-matches expired offers
(``app.supervision.batches._rematched``), with each request's run weights.

Exactly once with several workers: the write transaction locks the requests (in the global
order), and only requests whose mark is still the one the plan was made under are cleared
and offered (compare-and-set on the mark's time). Another worker that drained them first
cleared the mark; a decline since (a new mark) makes the plan stale and the next poll plans
again. What happened to a request meanwhile (withdrawn, resolved, offered by hand) is caught
by ``planned_apart``: it loses its mark and gets no offer. A request whose planned offer no
longer fits when it is written (its provider filled up or went away since, by a concurrent
change or by an offer of the same poll planned under other weights) is marked again, and
planned again by the next drain against what is true then: a drain takes only the marks
made before it began (:func:`drain`), so a mismatch between plan and write never spins.

A request whose re-match raises (its data breaks the snapshot or the engine) must not hold
up the others: a batch that fails is planned (or written) again in halves, each under a
savepoint, until the failing requests stand alone; the rest are offered as usual. A failed
request keeps its mark, moved to the time of its next attempt (``RETRY_AFTER``, doubled per
failure, counted in ``help_requests.rematch_failures``); after ``ATTEMPTS`` failures the
worker gives it up: the mark goes, the request shows the unmatched reason
``rematch_failed`` (and its ``request.unmatched`` event), and a coordinator assigns it by
hand. Connection-level errors (``OperationalError``: the database gone, a deadlock) are not
the request's fault: they fail the poll as before, and the next poll tries again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.assignments import rematch as rematch_service
from app.assignments import rematch_marks, repository
from app.assignments import unmatched as unmatched_store
from app.common.clock import as_utc, utc_now
from app.common.locking import lock_in_order
from app.events import service as event_service
from app.models import Enterprise, HelpRequest
from app.observability import metrics

logger = logging.getLogger(__name__)
T = TypeVar("T")

BATCH = 250  # requests per engine run: the snapshot and text model are the fixed cost
MARKED = rematch_marks.MARKED
Transaction = Callable[[], AbstractContextManager[Session]]  # one short transaction per call
ATTEMPTS = 5  # failed re-matches of one request before the worker gives it up
RETRY_AFTER = timedelta(minutes=1)  # before the 2nd attempt; doubled for each one after


def mark(session: Session, request_ids: Iterable[int]) -> None:
    """Leave these requests to the worker's re-match, in the caller's transaction. A request
    already marked takes the new time: a plan made before this change must not apply."""
    ids = sorted(set(request_ids))
    if not ids:
        return
    session.flush()
    rematch_marks.set_marks(session, ids, utc_now())


def new_mark() -> dict[str, Any]:
    """The columns of a fresh mark (a new one starts the failure count again), for a caller
    that writes the request with a statement of its own and lets the mark ride on it."""
    return {"rematch_requested_at": utc_now(), "rematch_failures": 0}


def mark_loaded(request: HelpRequest) -> None:
    """``mark`` for a request the caller loaded and flushes anyway: the mark rides on that
    UPDATE instead of a statement of its own."""
    for name, value in new_mark().items():
        setattr(request, name, value)


def pending(session: Session) -> int:
    """Requests awaiting their re-match (a partial index holds exactly these)."""
    return int(session.scalar(select(func.count()).select_from(HelpRequest).where(MARKED)) or 0)


@dataclass(frozen=True)
class Batch:
    """A batch's engine decisions, and the mark each request had when they were made."""

    marks: dict[int, datetime]
    planned: list[rematch_service.Planned]
    failed: dict[int, str] = field(default_factory=dict)  # request → the error its plan raised


def plan_batch(
    session: Session, *, batch: int = BATCH, until: datetime | None = None
) -> Batch | None:
    """The oldest ``batch`` marks made by ``until`` (default: now; never a retry's future
    time) and the engine's decisions for them; reads only. ``None`` when there is none (one
    indexed query: an idle poll costs no more)."""
    rows = session.execute(
        select(HelpRequest.id, HelpRequest.rematch_requested_at)
        .where(MARKED, HelpRequest.rematch_requested_at <= (until or utc_now()))
        .order_by(HelpRequest.rematch_requested_at, HelpRequest.id)
        .limit(batch)
    ).all()
    if not rows:
        return None
    marks = {int(i): as_utc(at) for i, at in rows if at is not None}
    planned, failed = _plan_isolated(session, sorted(marks))
    return Batch(marks, planned, failed)


def _plan_isolated(
    session: Session, ids: Sequence[int]
) -> tuple[list[rematch_service.Planned], dict[int, str]]:
    """Plan ``ids``, isolating the requests whose planning raises (:func:`_isolated`)."""
    plans, failed = _isolated(
        session, ids, lambda part: rematch_service.plan(session, request_ids=part)
    )
    return [group for plan in plans for group in plan], failed


def _isolated(
    session: Session, ids: Sequence[int], step: Callable[[Sequence[int]], T]
) -> tuple[list[T], dict[int, str]]:
    """``step`` over ``ids`` under a savepoint (an error inside it leaves the transaction
    usable on PostgreSQL); when that raises, each half the same way, down to single
    requests. Returns what the steps that went through returned, and the requests whose
    step raised (with the error's name)."""
    try:
        with session.begin_nested():
            return [step(ids)], {}
    except OperationalError:
        raise
    except Exception as error:
        if len(ids) <= 1:
            logger.warning("re-match of request(s) %s failed", list(ids), exc_info=True)
            return [], dict.fromkeys(ids, type(error).__name__)
    half = len(ids) // 2
    first, first_failed = _isolated(session, ids[:half], step)
    second, second_failed = _isolated(session, ids[half:], step)
    return first + second, first_failed | second_failed


def apply_batch(session: Session, planned: Batch) -> int:
    """Clear the marks still as planned and write those requests' offers, in the caller's
    (write) transaction; returns the requests this call settled (taken, and not marked
    again because their offer no longer fitted)."""
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
    taken = set(ours)
    failed = {r: error for r, error in planned.failed.items() if r in taken}
    rematch_marks.set_marks(session, sorted(taken - failed.keys()), None)
    requeued, apply_failed = _apply_isolated(session, planned.planned, taken - failed.keys())
    failed |= apply_failed
    if failed:
        _record_failures(session, failed)
    return len(ours) - len(requeued)


def _apply_isolated(
    session: Session, groups: Sequence[rematch_service.Planned], taken: set[int]
) -> tuple[set[int], dict[int, str]]:
    """Write the groups' decisions for ``taken`` in one batch, isolating the requests whose
    writing raises (:func:`_isolated`); returns the requests marked again (their offer no
    longer fitted) and those that failed."""

    def write(part: Sequence[int]) -> tuple[int, ...]:
        only = [_only(group, set(part)) for group in groups]
        return rematch_service.apply(session, only, actor=None, planned_apart=True).requeued

    decided = sorted(r for group in groups for r in group.decided if r in taken)
    if not decided:
        return set(), {}
    written, failed = _isolated(session, decided, write)
    return {r for again in written for r in again}, failed


def _record_failures(session: Session, failed: dict[int, str]) -> None:
    """Count each failed request's failure: its mark moves to the next attempt's time, or,
    at ``ATTEMPTS`` failures, it is given up (mark cleared, reason and event recorded)."""
    rows = session.execute(
        select(HelpRequest.id, HelpRequest.rematch_failures, Enterprise.region_code)
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .where(HelpRequest.id.in_(sorted(failed)))
    ).all()
    now = utc_now()
    retry: dict[int, list[int]] = defaultdict(list)  # failures so far → requests
    given_up: list[tuple[int, int, str]] = []
    for request_id, before, region in rows:
        count = int(before) + 1
        if count >= ATTEMPTS:
            given_up.append((int(request_id), count, region))
        else:
            retry[count].append(int(request_id))
    for count, ids in retry.items():
        rematch_marks.set_marks(session, ids, now + RETRY_AFTER * 2 ** (count - 1), failures=count)
        metrics.REMATCH_FAILURES.labels("retried").inc(len(ids))
    if given_up:
        _give_up(session, given_up, failed)


def _give_up(
    session: Session, given_up: list[tuple[int, int, str]], failed: dict[int, str]
) -> None:
    """The requests the worker no longer retries: unmarked, with the reason a coordinator
    reads on the request (and in its ``request.unmatched`` event)."""
    for count in {c for _, c, _ in given_up}:
        rematch_marks.set_marks(
            session, [r for r, c, _ in given_up if c == count], None, failures=count
        )
    reasons = {r: unmatched_store.failed(r, c) for r, c, _ in given_up}
    unmatched_store.record_failed(session, list(reasons.values()))
    event_service.record_many(
        session,
        actor=None,
        changes=(
            event_service.Change(
                action="request.unmatched",
                entity_type="help_requests",
                entity_id=request_id,
                region_code=region,
                after=reasons[request_id] | {"error": failed[request_id]},
            )
            for request_id, _, region in given_up
        ),
    )
    metrics.REMATCH_FAILURES.labels("given_up").inc(len(given_up))
    logger.error(
        "re-match given up after %d failures for request(s) %s",
        ATTEMPTS,
        sorted(r for r, _, _ in given_up),
    )


def drain(
    read: Transaction, write: Transaction, *, batch: int = BATCH, most: int | None = None
) -> int:
    """Re-match the requests marked before the drain began, a batch at a time, until none
    is left (or ``most`` were taken); what the worker runs on every poll. Returns the
    requests taken.

    Marks made while it runs (declines arriving meanwhile, offers handed back) wait for the
    next drain, which the worker's gather window batches. A drain that chased them re-planned
    the few that came in during each batch, every such batch paying the fixed cost of a
    snapshot and an engine run per category set: under the load bench's steady trickle of
    declines on PostgreSQL, 0.5 s of worker CPU for a 40-request drain that costs 0.13 s
    in one batch."""
    done = 0
    began = utc_now()
    while most is None or done < most:
        with read() as session:
            planned = plan_batch(session, batch=batch, until=began)
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
