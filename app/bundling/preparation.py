"""Preparing the plans a large publish marked, after its commit, in short batches.

Publishing 100k enterprises' offers in one transaction that also generated every plan's
milestones, policies and summary held ~300k rows locked for 10–16 s. Above
``plan_preparation_inline_max`` plans the publish now only creates, links and marks them
(``plans.preparation_run_id``); the worker calls :func:`prepare_batch` until nothing is left.
Each batch locks its enterprises (``SKIP LOCKED`` on PostgreSQL, so two workers take disjoint
batches), then their plans, in the global lock order, and runs the very
:func:`app.bundling.attach.prepare` the inline path runs, from the state at that moment: a
revert, an accept or a coordinator's edit in between is simply what it sees. Milestones are
only generated for requests that have none, so a batch that crashed and is taken again adds
nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.bundling import attach
from app.models import Enterprise, Plan

BATCH = 250  # plans per transaction: ~0.1 s of locks, against seconds for a whole publish


def _claim(session: Session, batch: int) -> list[int]:
    """Enterprises of plans awaiting preparation, locked in id order, skipping any another
    worker (or a publish, or an editor) holds: that batch is theirs, the next is ours."""
    pending = select(Plan.enterprise_id).where(Plan.preparation_run_id.is_not(None))
    return list(
        session.scalars(
            select(Enterprise.id)
            .where(Enterprise.id.in_(pending))
            .order_by(Enterprise.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    )


def prepare_batch(session: Session, batch: int = BATCH) -> int:
    """Prepare up to ``batch`` awaiting plans in the caller's transaction; 0 when none is
    left (or every one left is locked by someone else)."""
    enterprises = _claim(session, batch)
    if not enterprises:
        return 0
    attach.prepare_enterprises(session, enterprises, actor=None)
    return len(enterprises)


def prepare_pending(
    transaction: Callable[[], AbstractContextManager[Session]],
    *,
    batch: int = BATCH,
    most: int | None = None,
) -> int:
    """Drain the marks, one short transaction per batch (``transaction()`` yields a session
    inside a transaction, as the worker's housekeeping does); returns the plans prepared."""
    done = 0
    while most is None or done < most:
        with transaction() as session:
            prepared = prepare_batch(session, batch)
        if not prepared:
            return done
        done += prepared
    return done


def awaiting(session: Session, run_id: int | None = None) -> int:
    """Plans still awaiting preparation (of one run's publish, when given)."""
    statement = select(func.count()).select_from(Plan).where(Plan.preparation_run_id.is_not(None))
    if run_id is not None:
        statement = statement.where(Plan.preparation_run_id == run_id)
    return int(session.scalar(statement) or 0)


def awaiting_by_run(session: Session, run_ids: list[int]) -> dict[int, int]:
    """run id → its plans still awaiting preparation (runs with none left are absent)."""
    if not run_ids:
        return {}
    rows = session.execute(
        select(Plan.preparation_run_id, func.count())
        .where(Plan.preparation_run_id.in_(run_ids))
        .group_by(Plan.preparation_run_id)
    )
    return {int(run_id): int(n) for run_id, n in rows if run_id is not None}
