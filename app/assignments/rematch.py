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
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

import matching
from app.assignments import bulk_offers, repository
from app.assignments import unmatched as unmatched_store
from app.assignments.encode import Scope, breakdown, skilled_providers, snapshot
from app.bundling import attach
from app.common.collector import paused
from app.common.principal import Principal
from app.events import service as event_service
from app.models import Assignment

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
    return apply(session, plan(session, request_ids=request_ids), actor=actor)


@dataclass(frozen=True)
class Planned:
    """One group's re-match, decided from a snapshot and not yet written: the sweep decides
    in a read transaction (no write lock while the engine runs) and writes in a short one,
    where each offer is checked again (:func:`app.assignments.bulk_offers.write_offers`)."""

    result: matching.MatchResult
    run_id: int | None
    request_enterprise: Mapping[int, int]
    request_region: Mapping[int, str]
    decided: tuple[int, ...]  # every request the engine decided on (matched or not)


def plan(session: Session, *, request_ids: Iterable[int]) -> list[Planned]:
    """The engine's decisions for ``request_ids``, grouped by the run whose weights apply;
    reads only."""
    ids = tuple(sorted(set(request_ids)))
    if not ids:
        return []
    runs = _run_of_requests(session, ids)
    weights = _weights_by_run(session, runs.values())
    groups: dict[int | None, list[int]] = defaultdict(list)
    for request_id in ids:
        run_id = runs.get(request_id)
        groups[run_id if run_id in weights else None].append(request_id)
    planned: list[Planned] = []
    # The snapshot of a thousand or more skilled providers is an allocation burst in a
    # process holding much more (the API's, the worker's): collector passes cost as much.
    with paused():
        for run_id, members in sorted(groups.items(), key=lambda g: (g[0] is not None, g[0] or 0)):
            chosen = weights.get(run_id) if run_id is not None else None
            if (group := _plan_group(session, members, chosen, run_id)) is not None:
                planned.append(group)
    return planned


def apply(
    session: Session,
    planned: Iterable[Planned],
    *,
    actor: Principal | None,
    planned_apart: bool = False,
) -> list[Assignment]:
    """Write the planned offers (each checked again), record the unmatched, attach plans.

    ``planned_apart``: the plan was made in an earlier transaction, so an offer is also
    skipped when its request was offered meanwhile or its pair excluded since.
    """
    made: list[Assignment] = []
    for group in planned:
        made += _apply_group(session, group, actor, planned_apart)
    return made


class _TextModels:
    """The text models re-matches fitted lately, by the categories whose providers they read.

    A re-match fits TF-IDF on the providers skilled in its requests' categories; the next
    one of the same categories usually reads the very same texts. Handed back as the
    "previous result's" text cache, :func:`matching.rematch` reuses a model only when the
    providers' texts (and the glossary) are exactly the same, and refits otherwise: the
    scores are those of a fresh fit either way. Per process, the last ``size`` category sets.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.models: OrderedDict[tuple[str, ...], Any] = OrderedDict()

    def get(self, key: tuple[str, ...]) -> Any:
        with self.lock:
            return self.models.get(key)

    def put(self, key: tuple[str, ...], model: Any) -> None:
        with self.lock:
            self.models[key] = model
            self.models.move_to_end(key)
            while len(self.models) > self.size:
                self.models.popitem(last=False)


_TEXT_MODELS = _TextModels(size=16)


def warm_text_models(session: Session, *, stop: threading.Event | None = None) -> int:
    """Fit, ahead of any decline, the text models one-category re-matches will ask for: those
    of the categories with the most open offers (as many as the process keeps), each on the
    very providers such a re-match reads. A process's first re-match then finds its model
    instead of fitting one (~0.1 s at 10k providers). Returns how many were fitted."""
    fitted = 0
    for category in session.scalars(repository.offered_categories(_TEXT_MODELS.size)).all():
        if stop is not None and stop.is_set():
            break
        key = (category,)
        if _TEXT_MODELS.get(key) is not None:
            continue
        with paused():
            problem = skilled_providers(session, category)
            result = matching.rematch(_nothing_kept(matching.Weights(), None), problem)
        _TEXT_MODELS.put(key, result.text_cache)
        fitted += 1
    return fitted


def _nothing_kept(weights: matching.Weights, text_cache: Any) -> matching.MatchResult:
    """The "previous result" of a re-match that keeps nothing of its own: the rest is load."""
    return matching.MatchResult(
        assignments=(),
        unmatched=(),
        runners_up={},
        stats=_NO_STATS,
        weights=weights,
        text_cache=text_cache,
    )


def _plan_group(
    session: Session,
    ids: Sequence[int],
    weights: matching.Weights | None,
    run_id: int | None,
) -> Planned | None:
    snap = snapshot(session, Scope(request_ids=tuple(ids)), skilled_only=True)
    if len(snap.problem.requests) == 0:
        return None
    chosen = weights or matching.Weights()
    requests = snap.problem.requests
    categories = tuple(sorted({*requests.category, *(c for x in requests.extra for c in x)}))
    previous = _nothing_kept(chosen, _TEXT_MODELS.get(categories))
    result = matching.rematch(previous, snap.problem, changed=ids, weights=chosen)
    _TEXT_MODELS.put(categories, result.text_cache)
    decided = tuple(int(r) for r in snap.problem.requests.id)
    return Planned(
        result, run_id, dict(snap.request_enterprise), dict(snap.request_region), decided
    )


def _apply_group(
    session: Session, group: Planned, actor: Principal | None, planned_apart: bool
) -> list[Assignment]:
    """The group's offers in one batch (``bulk_offers``), its unmatched reasons and their
    events, and the plans of the enterprises that got an offer."""
    result, run_id = group.result, group.run_id
    choices = [
        bulk_offers.Choice(
            request_id=int(chosen.request),
            provider_id=int(chosen.provider),
            score=chosen.score,
            breakdown=breakdown(result, int(chosen.request), int(chosen.provider))
            | ({WEIGHTS_OF_RUN: run_id} if run_id else {}),
        )
        for chosen in result.assignments
    ]
    made = bulk_offers.write_offers(session, choices, actor=actor, planned_apart=planned_apart)
    unmatched_store.record(
        session,
        source=unmatched_store.REMATCH,
        decided=list(group.decided),
        unmatched=result.unmatched,
    )
    existing = set(
        session.scalars(repository.existing_requests([int(u.request) for u in result.unmatched]))
    )
    event_service.record_many(
        session,
        actor=actor,
        changes=(
            event_service.Change(
                action="request.unmatched",
                entity_type="help_requests",
                entity_id=int(u.request),
                region_code=group.request_region.get(int(u.request), ""),
                after=unmatched_store.structured(u),
            )
            for u in result.unmatched
            if int(u.request) in existing
        ),
    )
    attach.attach_many(
        session,
        enterprise_ids=[group.request_enterprise[o.request_id] for o in made],
        actor=actor,
    )
    return made


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
