"""Incremental re-matching after a decline, an expiry, a pause or an unsatisfied rating.

Only the named requests are decided again (``matching.rematch``); every other assignment
stays as it is and holds its provider's capacity (as load), so the engine picks the best
remaining provider — the request's runner-up first, if it still has room — without
disturbing anyone else. A request is re-matched with the weights (``min_score``, ``top_k``,
fairness, feature weights) of the run that made its assignment, not the defaults: a
coordinator's strict ``min_score`` must not be undone by the first decline. Re-match offers
remember that run (``breakdown["weights_of_run"]``) so the next decline keeps it too.

A request's re-match does not depend on which other requests happen to be re-matched with
it (the same poll's batch, the same sweep): it is decided among the providers skilled in its
own categories (its category and extra categories), with the text model fitted on exactly
those providers, as a re-match of that request alone would be. So a batch is planned in
parts, one per run (weights) and category set, each part a problem of its own cut from one
snapshot of the whole batch (one read, however many parts), each scored with its category
set's text model (the process keeps them, :data:`_TEXT_MODELS`, and the worker warms the
busiest ones). Only capacity links the parts: the parts are solved one after another, each
counting the offers planned by the parts before it as its providers' load, as if those had
been offered first. An offer that no longer fits when it is written (a concurrent change)
is not lost: its request is marked for the worker's next plan (:func:`apply`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

import matching
from app.assignments import bulk_offers, rematch_marks, repository
from app.assignments import unmatched as unmatched_store
from app.assignments.encode import Scope, Snapshot, breakdown, skilled_providers, snapshot
from app.bundling import attach
from app.common.clock import utc_now
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
    return apply(session, plan(session, request_ids=request_ids), actor=actor).made


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
    """The engine's decisions for ``request_ids``, one group per run whose weights apply and
    category set (see the module's docstring); reads only."""
    ids = tuple(sorted(set(request_ids)))
    if not ids:
        return []
    runs = _run_of_requests(session, ids)
    weights = _weights_by_run(session, runs.values())
    planned: list[Planned] = []
    # The snapshot of a thousand or more skilled providers is an allocation burst in a
    # process holding much more (the API's, the worker's): collector passes cost as much.
    with paused():
        snap = snapshot(session, Scope(request_ids=ids), skilled_only=True)
        run_of = {r: run if (run := runs.get(r)) in weights else None for r in ids}
        parts = _parts(snap.problem.requests, run_of)
        skilled = _skilled_rows(snap.problem.providers) if len(parts) > 1 else {}
        offered: Counter[Any] = Counter()  # provider → offers planned by the parts before
        for (run_id, categories), rows in parts:
            chosen = weights.get(run_id) if run_id is not None else None
            problem = (  # one part: the snapshot is that part's, as it stands
                _part(snap.problem, rows, categories, skilled, offered)
                if len(parts) > 1
                else snap.problem
            )
            group = _plan_group(snap, problem, categories, chosen, run_id)
            offered.update(a.provider for a in group.result.assignments)
            planned.append(group)
    return planned


def _parts(
    requests: matching.RequestTable, run_of: Mapping[int, int | None]
) -> list[tuple[tuple[int | None, tuple[str, ...]], NDArray[np.intp]]]:
    """The snapshot's request rows by (run whose weights apply, sorted category set), in
    that order (hand-made ones' defaults first): the parts planned one after another."""
    rows: dict[tuple[int | None, tuple[str, ...]], list[int]] = defaultdict(list)
    for row, (request_id, category, extra) in enumerate(
        zip(requests.id.tolist(), requests.category.tolist(), requests.extra, strict=True)
    ):
        rows[(run_of.get(int(request_id)), _category_set(category, extra))].append(row)
    order = sorted(rows, key=lambda k: (k[0] is not None, k[0] or 0, k[1]))
    return [(key, np.asarray(rows[key], dtype=np.intp)) for key in order]


def _category_set(category: str, extra: Iterable[str]) -> tuple[str, ...]:
    """The key of a request's providers and text model: its categories, sorted."""
    return tuple(sorted({category, *extra}))


def _skilled_rows(providers: matching.ProviderTable) -> dict[str, NDArray[np.intp]]:
    """category → rows of the providers with that skill (the rule of
    ``snapshot(skilled_only=True)``: a skill named, whatever its level), ascending."""
    rows: dict[str, list[int]] = defaultdict(list)
    for row, skills in enumerate(providers.skills):
        for category, level in skills.items():
            if level is not None:
                rows[category].append(row)
    return {c: np.asarray(r, dtype=np.intp) for c, r in rows.items()}


def _part(
    problem: matching.Problem,
    rows: NDArray[np.intp],
    categories: tuple[str, ...],
    skilled: Mapping[str, NDArray[np.intp]],
    offered: Mapping[Any, int],
) -> matching.Problem:
    """The requests ``rows`` of ``problem`` with only the providers skilled in
    ``categories``, in the snapshot's order (the problem a snapshot of these requests alone
    reads), their load counting the ``offered`` planned before. Exclusions stay whole: the
    engine ignores those naming requests or providers elsewhere."""
    none = np.zeros(0, dtype=np.intp)
    ours = np.unique(np.concatenate([none, *(skilled.get(c, none) for c in categories)]))
    chosen = problem.providers.take(ours)
    if offered:
        planned = np.array([offered.get(p, 0) for p in chosen.id.tolist()], dtype=np.int64)
        chosen = dataclasses.replace(chosen, load=chosen.load + planned)
    return matching.Problem(
        requests=problem.requests.take(rows),
        providers=chosen,
        exclusions=problem.exclusions,
        lexicon=problem.lexicon,
    )


@dataclass(frozen=True)
class Applied:
    """What writing planned groups did: the offers made, and the requests handed back to
    the worker (marked) because a planned offer of theirs no longer fitted."""

    made: list[Assignment]
    requeued: tuple[int, ...]


def apply(
    session: Session,
    planned: Iterable[Planned],
    *,
    actor: Principal | None,
    planned_apart: bool = False,
) -> Applied:
    """Write the groups' offers in one batch (``bulk_offers``, each checked again), their
    unmatched reasons and events, and the plans of the enterprises that got an offer: a
    fixed number of statements, however many groups a batch was planned in.

    ``planned_apart``: the plan was made in an earlier transaction, so an offer is also
    skipped when its request was offered meanwhile or its pair excluded since. A request
    whose offer is refused and that still wants a provider (the provider filled up or went
    away since the plan, the pair was forbidden since) is marked for the worker's re-match,
    in this transaction: planned again, it gets what fits now, never nothing.
    """
    groups = list(planned)
    if not groups:
        return Applied([], ())
    choices = [choice for group in groups for choice in _choices(group)]
    written = bulk_offers.write_offers(session, choices, actor=actor, planned_apart=planned_apart)
    unmatched = [u for group in groups for u in group.result.unmatched]
    unmatched_store.record(
        session,
        source=unmatched_store.REMATCH,
        decided=[r for group in groups for r in group.decided],
        unmatched=unmatched,
    )
    region = {r: code for group in groups for r, code in group.request_region.items()}
    _record_unmatched(session, unmatched, region, actor)
    enterprise = {r: e for group in groups for r, e in group.request_enterprise.items()}
    attach.attach_many(
        session, enterprise_ids=[enterprise[o.request_id] for o in written.made], actor=actor
    )
    if written.refused:
        rematch_marks.set_marks(session, list(written.refused), utc_now())
        logger.info("re-match of request(s) %s handed back to the worker", written.refused)
    return Applied(written.made, written.refused)


def _choices(group: Planned) -> list[bulk_offers.Choice]:
    """The group's offers, each with its explanation and the run whose weights chose it."""
    result, run_id = group.result, group.run_id
    return [
        bulk_offers.Choice(
            request_id=int(chosen.request),
            provider_id=int(chosen.provider),
            score=chosen.score,
            breakdown=breakdown(result, int(chosen.request), int(chosen.provider))
            | ({WEIGHTS_OF_RUN: run_id} if run_id else {}),
        )
        for chosen in result.assignments
    ]


def _record_unmatched(
    session: Session,
    unmatched: Sequence[matching.Unmatched],
    region: Mapping[int, str],
    actor: Principal | None,
) -> None:
    """A ``request.unmatched`` event for each unmatched request that still exists."""
    existing = set(
        session.scalars(repository.existing_requests([int(u.request) for u in unmatched]))
    )
    event_service.record_many(
        session,
        actor=actor,
        changes=(
            event_service.Change(
                action="request.unmatched",
                entity_type="help_requests",
                entity_id=int(u.request),
                region_code=region.get(int(u.request), ""),
                after=unmatched_store.structured(u),
            )
            for u in unmatched
            if int(u.request) in existing
        ),
    )


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
    snap: Snapshot,
    problem: matching.Problem,
    categories: tuple[str, ...],
    weights: matching.Weights | None,
    run_id: int | None,
) -> Planned:
    """One part's decisions, with its category set's text model (reused when the providers'
    texts are unchanged, fitted and kept otherwise)."""
    chosen = weights or matching.Weights()
    ids = [int(r) for r in problem.requests.id]
    previous = _nothing_kept(chosen, _TEXT_MODELS.get(categories))
    result = matching.rematch(previous, problem, changed=ids, weights=chosen)
    _TEXT_MODELS.put(categories, result.text_cache)
    return Planned(
        result,
        run_id,
        {r: snap.request_enterprise[r] for r in ids},
        {r: snap.request_region[r] for r in ids},
        tuple(ids),
    )


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
