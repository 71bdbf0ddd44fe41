"""Incremental re-matching after a decline, an expiry, a pause or an unsatisfied rating.

Only the named requests are decided again (``matching.rematch``); every other assignment
stays as it is and holds its provider's capacity (as load), so the engine picks the best
remaining provider — the request's runner-up first, if it still has room — without
disturbing anyone else. A request is re-matched with the weights (``min_score``, ``top_k``,
fairness, feature weights) of the run that made its assignment, not the defaults: a
coordinator's strict ``min_score`` must not be undone by the first decline. Re-match offers
remember that run (``breakdown["weights_of_run"]``) so the next decline keeps it too.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session

import matching
from app.assignments import offers, repository
from app.assignments import unmatched as unmatched_store
from app.assignments.encode import Scope, breakdown, snapshot
from app.common.principal import Principal
from app.errors import AppError
from app.events import service as event_service
from app.models import Assignment, AssignmentOrigin, HelpRequest
from app.plans import attach

logger = logging.getLogger(__name__)


WEIGHTS_OF_RUN = "weights_of_run"  # breakdown key: the run whose weights an offer was made with


def _run_of_requests(session: Session, ids: Sequence[int]) -> dict[int, int]:
    """request → the run whose weights its latest assignment was made with (if any)."""
    runs: dict[int, int] = {}
    for request_id, run_id, explained in session.execute(repository.weights_sources(ids)):
        source = run_id or (explained or {}).get(WEIGHTS_OF_RUN)
        if source:
            runs[request_id] = int(source)
    return runs


def _weights_by_run(session: Session, run_ids: Iterable[int]) -> dict[int, matching.Weights]:
    found: dict[int, matching.Weights] = {}
    for run_id, weights in session.execute(repository.run_weights(sorted(set(run_ids)))):
        try:
            found[run_id] = matching.Weights(**weights)
        except (TypeError, matching.InvalidProblem):  # a knob the engine no longer knows
            logger.warning("match run %s has weights the engine refuses; using defaults", run_id)
    return found


def rematch_requests(
    session: Session,
    *,
    request_ids: Iterable[int],
    actor: Principal | None,
) -> list[Assignment]:
    """Offer each request its best allowed provider now, with the weights of the run that
    made its assignment (defaults for hand-made ones); returns the new offers."""
    ids = tuple(sorted(set(request_ids)))
    if not ids:
        return []
    runs = _run_of_requests(session, ids)
    weights = _weights_by_run(session, runs.values())
    groups: dict[int | None, list[int]] = defaultdict(list)
    for request_id in ids:
        run_id = runs.get(request_id)
        groups[run_id if run_id in weights else None].append(request_id)
    made: list[Assignment] = []
    for run_id, members in sorted(groups.items(), key=lambda g: (g[0] is not None, g[0] or 0)):
        chosen = weights.get(run_id) if run_id is not None else None
        made += _rematch_group(session, members, chosen, run_id, actor)
    return made


def _rematch_group(
    session: Session,
    ids: Sequence[int],
    weights: matching.Weights | None,
    run_id: int | None,
    actor: Principal | None,
) -> list[Assignment]:
    snap = snapshot(session, Scope(request_ids=tuple(ids)), skilled_only=True)
    if len(snap.problem.requests) == 0:
        return []
    chosen = weights or matching.Weights()
    previous = matching.MatchResult(
        assignments=(), unmatched=(), runners_up={}, stats=_NO_STATS, weights=chosen
    )
    result = matching.rematch(previous, snap.problem, changed=ids, weights=chosen)
    offers = [_offer(session, result, a, actor, run_id) for a in result.assignments]
    unmatched_store.record(
        session,
        source=unmatched_store.REMATCH,
        decided=[int(r) for r in snap.problem.requests.id],
        unmatched=result.unmatched,
    )
    for unmatched in result.unmatched:
        request = session.get(HelpRequest, unmatched.request)
        if request is not None:
            event_service.record(
                session,
                actor=actor,
                action="request.unmatched",
                entity=request,
                region_code=snap.request_region.get(request.id, ""),
                after=unmatched_store.structured(unmatched),
            )
    attach.attach_many(
        session,
        enterprise_ids=[snap.request_enterprise[o.request_id] for o in offers if o],
        actor=actor,
    )
    return [o for o in offers if o is not None]


_NO_STATS = matching.Stats(
    requests=0,
    providers=0,
    pinned=0,
    open_requests=0,
    available_providers=0,
    requests_with_candidates=0,
    candidate_pairs=0,
    matched=0,
    unmatched=0,
    unmatched_by_reason={},
    objective=0.0,
    bound=0.0,
    gap=0.0,
    seconds={},
)  # the "previous result" of a re-match that keeps nothing of its own: the rest is load


def _offer(
    session: Session,
    result: matching.MatchResult,
    chosen: Any,
    actor: Principal | None,
    run_id: int | None,
) -> Assignment | None:
    request = session.get(HelpRequest, chosen.request)
    provider = offers.lock_provider(session, chosen.provider)
    if request is None:
        return None
    try:
        offers.check_pair_allowed(session, request, provider)
    except AppError as exc:  # capacity went elsewhere since the snapshot: leave it for a run
        logger.info("re-match of request %s skipped provider %s: %s", request.id, provider.id, exc)
        return None
    return offers.create_offer(
        session,
        request=request,
        provider=provider,
        origin=AssignmentOrigin.REMATCH,
        actor=actor,
        score=chosen.score,
        breakdown=breakdown(result, request.id, provider.id)
        | ({WEIGHTS_OF_RUN: run_id} if run_id else {}),
    )
