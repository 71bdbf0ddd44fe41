"""The match pipeline: validate → encode → text → candidates → solve → explain.

Pins are kept as given and consume capacity *before* candidates are generated, so top-K
lists never waste room on providers the pins have filled, and the solver only decides the
open requests. The same mechanism makes :func:`rematch` exact and cheap: the pairs it
keeps are pins, and only the open requests are scored and solved.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from time import perf_counter

import numpy as np
from numpy.typing import NDArray

from matching.assign import Solved, solve_open
from matching.encode import Encoded, PairSet, encode
from matching.errors import Infeasible, InvalidProblem
from matching.explaining.advice import Advice, advise, potentials, slot_gain
from matching.explaining.explanations import (
    build_assignments,
    build_unmatched,
    collect_kept,
    ranked_candidates,
)
from matching.pins import Context, Pairs, keep_pins
from matching.problem import Exclusion, Id, Problem
from matching.result import Candidate, MatchResult, Stats
from matching.scoring.candidates import Candidates, generate
from matching.scoring.features import priority
from matching.scoring.text import TextCache, vectorise
from matching.scoring.weights import Weights
from matching.validate import validate

__all__ = ["match", "rank", "rematch"]


@dataclass
class _Stages:
    """Wall-clock seconds per pipeline stage, in the order they ran."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + perf_counter() - start


def _prepare(
    enc: Encoded,
    weights: Weights,
    pins: tuple[PairSet, PairSet],
    stages: _Stages,
    cache: TextCache | None = None,
) -> tuple[Context, Pairs, NDArray[np.int64], Candidates, TextCache]:
    """Text vectors, pins (required, optional; capacity consumed), the providers each
    request still wants (0: not open) and the open requests' candidates."""
    with stages("text"):
        texts = vectorise(enc.prov_text, enc.req_ids, enc.req_text, cache, enc.lexicon.glossary)
    prio = priority(enc.req_urgency, enc.req_tier, weights)
    ctx = Context(enc, weights, texts.model, texts.requests, prio)
    required, optional = pins
    with stages("pins"):
        kept = keep_pins(ctx, required, optional)
        used = np.bincount(kept.prov, minlength=enc.n_prov)
        ctx = replace(ctx, enc=replace(enc, free=enc.free - used))
        demand = enc.req_wanted - np.bincount(kept.req, minlength=enc.n_req)
        open_ = demand > 0
    with stages("candidates"):
        cand = generate(
            _without_team_pins(ctx.enc, kept, open_), texts.model, texts.requests, open_, weights
        )
    return ctx, kept, demand * open_, cand, texts


def _without_team_pins(enc: Encoded, kept: Pairs, open_: NDArray[np.bool_]) -> Encoded:
    """A team request still open keeps its pinned members: they are no candidates again
    (a provider serves a request once)."""
    members = open_[kept.req]
    if not members.any():
        return enc
    pairs = zip(kept.req[members].tolist(), kept.prov[members].tolist(), strict=True)
    both = zip(enc.excluded.req.tolist(), enc.excluded.prov.tolist(), strict=True)
    return replace(enc, excluded=PairSet.of([*both, *pairs]))


def _run(
    enc: Encoded,
    weights: Weights,
    pins: tuple[PairSet, PairSet],
    stages: _Stages,
    cache: TextCache | None = None,
) -> MatchResult:
    ctx, fixed, demand, cand, texts = _prepare(enc, weights, pins, stages, cache)
    open_ = demand > 0
    with stages("solve"):
        solved = solve_open(ctx, cand, fixed, demand)
        picks, multiplier, open_bound = solved.picks, solved.multiplier, solved.bound
    with stages("explain"):
        kept = collect_kept(ctx, fixed, cand, picks, multiplier)
        assignments = build_assignments(ctx, kept)
        chosen = np.zeros(len(cand), dtype=bool)
        chosen[picks] = True
        runners = ranked_candidates(ctx, cand, chosen, weights.runners_up)
        unmatched = build_unmatched(ctx, cand, open_, kept)
        missing = demand - np.bincount(cand.req[picks], minlength=enc.n_req)
    objective = float(kept.gain.sum())
    bound = float(kept.gain[kept.pinned].sum()) + open_bound
    stats = Stats(
        requests=enc.n_req,
        providers=enc.n_prov,
        pinned=len(fixed.req),
        open_requests=int(open_.sum()),
        available_providers=int((ctx.enc.available & (ctx.enc.free > 0)).sum()),
        requests_with_candidates=len(np.unique(cand.req)),
        candidate_pairs=len(cand),
        matched=len(assignments),
        unmatched=len(unmatched),
        unmatched_by_reason=dict(Counter(str(u.reason) for u in unmatched)),
        objective=objective,
        bound=max(bound, objective),
        gap=max(bound - objective, 0.0) / max(1.0, abs(bound)),
        seconds={**stages.seconds, "total": sum(stages.seconds.values())},
    )
    with stages("advice"):
        advice = _advice(ctx, cand, solved, missing, fixed)
    stats = replace(stats, seconds={**stages.seconds, "total": sum(stages.seconds.values())})
    short = {enc.req_ids[r]: int(missing[r]) for r in np.flatnonzero(missing > 0).tolist()}
    return MatchResult(assignments, unmatched, runners, stats, weights, texts, advice, short)


def _advice(
    ctx: Context,
    cand: Candidates,
    solved: Solved,
    missing: NDArray[np.int64],
    pins: Pairs,
) -> tuple[Advice, ...]:
    """Exact value of one more slot per category × region short of providers.

    A new slot of provider ``j`` is its ``capacity``-th (fairness multiplier
    ``(1 - φ)^capacity``), so its gain for request ``i`` is ``fit × priority × that``.
    """
    enc = ctx.enc
    potential, exact = potentials(solved.gains, solved.demand, solved.chosen)
    by_request = np.full(enc.n_req, -np.inf)
    by_request[solved.rows] = potential
    others = np.ones(len(cand), dtype=bool)
    others[solved.picks] = False
    req, prov = cand.req[others], cand.prov[others]
    capacity = enc.load + enc.free + np.bincount(pins.prov, minlength=enc.n_prov)
    slot = (1.0 - ctx.weights.fairness) ** capacity[prov]
    value = slot_gain(by_request[req], cand.fit[others] * ctx.priority[req] * slot)
    # a request holding j that moves to j's new slot frees j: a whole slot of j for anyone
    whole = np.zeros(enc.n_prov)
    np.maximum.at(whole, prov, value)
    held_req, held_prov = cand.req[solved.picks], cand.prov[solved.picks]
    return advise(
        enc,
        missing=missing,
        pair_req=np.r_[req, held_req],
        pair_prov=np.r_[prov, held_prov],
        pair_value=np.r_[value, whole[held_prov]],
        capacity=capacity,
        exact=exact,
    )


def match(problem: Problem, weights: Weights | None = None) -> MatchResult:
    """Propose an exact, explained assignment of ``problem``'s requests to providers.

    Steps: validate once; sort by ids (input order never matters); fit TF-IDF on the
    providers' expertise; keep the pins (checked against the hard rules and capacity);
    for every open request, score only the providers covering its category that pass the
    hard rules, keep the top ``weights.top_k``; maximise the total of
    ``fit × priority (× fairness slot multiplier)`` exactly with
    :func:`matching.solving.solve.solve_assignment`; explain every pair and every unmatched
    request.

    Parameters
    ----------
    problem : Problem
    weights : Weights, optional
        Defaults to ``Weights()``.

    Returns
    -------
    MatchResult

    Raises
    ------
    InvalidProblem
        A malformed field (named in the message).
    Infeasible
        A pin breaks a hard rule, or pins exceed a provider's free capacity.
    """
    stages = _Stages()
    with stages("validate"):
        validate(problem)
    with stages("encode"):
        enc = encode(problem)
    return _run(enc, weights or Weights(), (enc.pinned, PairSet.of(())), stages)


def rank(problem: Problem, weights: Weights | None = None) -> dict[Id, tuple[Candidate, ...]]:
    """Each open request's top-K candidates, best first, before any capacity competition.

    The same scores :func:`match` solves over (hard rules applied, pins consuming
    capacity): what a coordinator browses when assigning by hand.
    """
    stages = _Stages()
    validate(problem)
    enc = encode(problem)
    ctx, _, _, cand, _ = _prepare(enc, weights or Weights(), (enc.pinned, PairSet.of(())), stages)
    return ranked_candidates(ctx, cand, np.zeros(len(cand), dtype=bool), None)


def _positions(enc: Encoded, pairs: Iterable[tuple[Id, Id]], what: str) -> list[tuple[int, int]]:
    """Canonical indices of id pairs; unknown ids raise :class:`InvalidProblem`."""
    req_pos = {rid: i for i, rid in enumerate(enc.req_ids)}
    prov_pos = {pid: i for i, pid in enumerate(enc.prov_ids)}
    out = []
    for request, provider in pairs:
        if request not in req_pos or provider not in prov_pos:
            raise InvalidProblem(f"{what}: {(request, provider)!r} names an unknown id")
        out.append((req_pos[request], prov_pos[provider]))
    return out


def _one_per_request(enc: Encoded, pairs: PairSet) -> None:
    """At most one pinned or fixed provider per request — ``wanted`` for a team."""
    held = np.bincount(pairs.req, minlength=enc.n_req)
    over = np.flatnonzero(held > enc.req_wanted)
    if len(over):
        request = enc.req_ids[over[0]]
        raise Infeasible(f"request {request!r} is pinned or fixed to more providers than it wants")


def rematch(
    previous: MatchResult,
    problem: Problem,
    *,
    changed: Iterable[Id] = (),
    declined: Iterable[tuple[Id, Id]] = (),
    fixed: Iterable[tuple[Id, Id]] | None = None,
    weights: Weights | None = None,
) -> MatchResult:
    """Repair ``previous`` after declines, expiries, pauses or new requests.

    Every pair that stays is kept as a pin (it consumes capacity and is not re-decided);
    only the open requests are scored and solved, so the result equals a full
    :func:`match` of ``problem`` with those pins, at a fraction of the cost. A declined
    request's best remaining candidate (its first runner-up, if it still has room) is what
    the solver picks first.

    Parameters
    ----------
    previous : MatchResult
        The result being repaired (its pairs, and its weights by default).
    problem : Problem
        The *current* state: it may add or drop requests and providers, pause or
        deactivate providers, carry new exclusions and loads. Loads must not count the
        pairs of ``previous`` that stay (those consume capacity as pins here).
    changed : iterable of request ids
        Requests to decide again (expired or withdrawn offers, edited requests).
    declined : iterable of (request id, provider id)
        Declined pairs: excluded from now on, and their requests decided again — for a
        team request only the declined member's seat; the other members stay.
    fixed : iterable of (request id, provider id), optional
        The pairs to keep. Default: every pair of ``previous`` whose request is still in
        ``problem`` and not changed or declined, and that still passes the hard rules
        and the capacity (pairs of a paused provider, say, are reopened; over capacity,
        a provider keeps its best pairs). Given explicitly, they must all hold, or
        :class:`~matching.errors.Infeasible` is raised. ``problem.pinned`` always stays.
    weights : Weights, optional
        Defaults to ``previous.weights``.

    Returns
    -------
    MatchResult
        Kept pairs have ``pinned=True``; requests open before and still unmatched get
        fresh reasons.
    """
    declined = tuple((r, p) for r, p in declined)
    extra = tuple(Exclusion(provider=p, request=r) for r, p in declined)
    problem = problem.replace(exclusions=(*problem.exclusions, *extra))
    stages = _Stages()
    with stages("validate"):
        validate(problem)
    with stages("encode"):
        enc = encode(problem)
    reopen = set(changed)
    if fixed is None:
        present = set(enc.req_ids) - reopen
        providers = set(enc.prov_ids)
        pinned = zip(enc.pinned.req.tolist(), enc.pinned.prov.tolist(), strict=True)
        # a team keeps its other members (only the declined one goes); a request's pins
        # come first and fill its seats, so a single request keeps no older pair
        gone = set(declined) | {(enc.req_ids[r], enc.prov_ids[p]) for r, p in pinned}
        keep = (
            (r, p)
            for r, p in previous.pairs
            if r in present and p in providers and (r, p) not in gone
        )
        required, optional = enc.pinned, PairSet.of(_positions(enc, keep, "previous"))
    else:
        pairs = _positions(enc, fixed, "fixed")
        problem_pins = zip(enc.pinned.req.tolist(), enc.pinned.prov.tolist(), strict=True)
        required = PairSet.of([*problem_pins, *pairs])
        optional = PairSet.of(())
        _one_per_request(enc, required)
    return _run(enc, weights or previous.weights, (required, optional), stages, previous.text_cache)
