"""Judging named pairs by the hard rules and the score the solver would give them.

A coordinator's hand-made offer or re-assignment must obey what a run obeys. Rather than a
second copy of the rules, :func:`check_pairs` scores the pairs with the pipeline's own pair
scorer (:func:`matching.pins.pair_values`) and reads the pipeline's own rule masks
(:func:`matching.pins.rule_masks`), adding the two rules that depend on the whole problem:
free capacity and the minimum score.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from matching.encode import PairSet, encode
from matching.errors import InvalidProblem
from matching.pins import Context, pair_values, rule_masks
from matching.problem import Id, Problem
from matching.scoring.candidates import RULES
from matching.scoring.features import priority
from matching.scoring.text import vectorise
from matching.scoring.weights import FEATURES, Weights
from matching.validate import validate

__all__ = ["PairCheck", "check_pairs"]


@dataclass(frozen=True, slots=True)
class PairCheck:
    """One pair's verdict.

    Attributes
    ----------
    broken : tuple of str
        Every hard rule the pair breaks, in funnel order (:data:`matching.scoring.candidates.RULES`);
        empty when the solver could choose it.
    fit : float
        The pair's fit in [0, 1] (what ``min_score`` is compared with).
    features : dict of str to float
        Feature values, keyed by :data:`matching.scoring.weights.FEATURES`.
    """

    request: Id
    provider: Id
    broken: tuple[str, ...]
    fit: float
    features: dict[str, float]


def check_pairs(
    problem: Problem, pairs: Iterable[tuple[Id, Id]], weights: Weights | None = None
) -> tuple[PairCheck, ...]:
    """Judge ``pairs`` (request id, provider id) of ``problem`` as the solver would.

    ``capacity`` is broken when the provider has no free slot (capacity − load − pins);
    ``min_score`` when the fit is below ``weights.min_score``; the other rules exactly as
    the candidate generator applies them.

    Raises
    ------
    InvalidProblem
        A malformed problem, or a pair naming an unknown id.
    """
    weights = weights or Weights()
    validate(problem)
    enc = encode(problem)
    pairs = list(pairs)
    req_pos = {rid: i for i, rid in enumerate(enc.req_ids)}
    prov_pos = {pid: i for i, pid in enumerate(enc.prov_ids)}
    for request, provider in pairs:
        if request not in req_pos or provider not in prov_pos:
            raise InvalidProblem(f"pairs: {(request, provider)!r} names an unknown id")
    index = PairSet(
        np.array([req_pos[r] for r, _ in pairs], dtype=np.intp),
        np.array([prov_pos[p] for _, p in pairs], dtype=np.intp),
    )
    texts = vectorise(enc.prov_text, enc.req_ids, enc.req_text, None, enc.lexicon.glossary)
    prio = priority(enc.req_urgency, enc.req_tier, weights)
    values = pair_values(Context(enc, weights, texts.model, texts.requests, prio), index)
    masks = rule_masks(enc, values)
    masks["capacity"] = enc.free[index.prov] <= 0
    masks["min_score"] = values.fit < weights.min_score
    return tuple(
        PairCheck(
            request=request,
            provider=provider,
            broken=tuple(rule for rule in RULES if masks[rule][i]),
            fit=float(values.fit[i]),
            features={name: float(values.features[i, j]) for j, name in enumerate(FEATURES)},
        )
        for i, (request, provider) in enumerate(pairs)
    )
