"""Scoring arbitrary pairs, and keeping pins: the shared context of the pipeline stages.

Pins (a coordinator's pins, or the pairs a re-match keeps fixed) are scored with the same
feature code as the blocked candidate pass (:func:`pair_values`), checked against the hard
rules and capacity (:func:`keep_pins`), and take their providers' first slots when the
fairness option is on (:func:`pin_multipliers`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.encode import Encoded, PairSet
from matching.errors import Infeasible
from matching.scoring.features import (
    INDUSTRY_FIT,
    REGION_FIT,
    combine,
    industry_pairs,
    rating_fit,
    region_pairs,
)
from matching.scoring.text import TextModel
from matching.scoring.weights import Weights

__all__ = [
    "Context",
    "Pairs",
    "broken_rule",
    "keep_pins",
    "pair_values",
    "pin_multipliers",
    "rule_masks",
    "secondary_levels",
]


@dataclass(frozen=True, slots=True)
class Pairs:
    """Scored pairs in canonical indices; arrays of shape (n,) or (n, 5)."""

    req: NDArray[np.intp]
    prov: NDArray[np.intp]
    features: NDArray[np.float64]
    fit: NDArray[np.float64]
    region: NDArray[np.uint8]

    def take(self, index: NDArray[np.bool_] | NDArray[np.intp]) -> Pairs:
        """Pairs selected by a boolean mask or an index array."""
        return Pairs(
            self.req[index],
            self.prov[index],
            self.features[index],
            self.fit[index],
            self.region[index],
        )


@dataclass(frozen=True, slots=True)
class Context:
    """What every stage after encoding needs."""

    enc: Encoded
    weights: Weights
    model: TextModel
    text: sp.csr_array  # (n_req, n_terms); rows of requests not involved are empty
    priority: NDArray[np.float64]  # (n_req,)


def pair_values(ctx: Context, pairs: PairSet) -> Pairs:
    """Features and fit of arbitrary pairs (pins): same formulas as the blocked path."""
    enc, req, prov = ctx.enc, pairs.req, pairs.prov
    if len(req) == 0:
        return Pairs(req, prov, np.zeros((0, 5)), np.zeros(0), np.zeros(0, np.uint8))
    skill = np.asarray(enc.skill[prov, enc.req_cat[req]]).ravel() / 3.0
    secondary = secondary_levels(enc, req, prov) / 3.0 * ctx.weights.secondary
    np.maximum(skill, secondary, out=skill)
    industry = industry_pairs(list(enc.req_industry[req]), [enc.prov_industries[p] for p in prov])
    region = region_pairs(
        list(enc.req_region[req]), [enc.prov_regions[p] for p in prov], enc.remote[prov]
    )
    f = np.column_stack(
        [
            skill,
            ctx.model.pair_similarity(ctx.text, req, prov),
            INDUSTRY_FIT[industry],
            REGION_FIT[region],
            rating_fit(enc.rating[prov]),
        ]
    )
    return Pairs(
        req, prov, f, combine(f[:, 0], f[:, 1], f[:, 2], f[:, 3], f[:, 4], ctx.weights), region
    )


def secondary_levels(
    enc: Encoded, req: NDArray[np.intp], prov: NDArray[np.intp]
) -> NDArray[np.float64]:
    """Per pair, the provider's best level over the request's secondary categories (0 if
    none), shape ``(n,)``: the product of two ``(n, n_categories)`` sparse rows."""
    if len(req) == 0 or enc.extra.nnz == 0:
        return np.zeros(len(req))
    both = sp.csr_array(enc.extra[req].multiply(enc.skill[prov]))
    return np.asarray(both.max(axis=1).toarray(), dtype=np.float64).ravel()


def rule_masks(enc: Encoded, pins: Pairs) -> dict[str, NDArray[np.bool_]]:
    """Per hard rule (funnel order, capacity and minimum score aside), which pairs break it.

    The one statement of the pair-level rules: pins, re-matches and hand-made offers are
    all judged by it (:func:`matching.check_pairs`)."""
    n = max(enc.n_prov, 1)
    keys = pins.req * n + pins.prov
    return {
        "category": pins.features[:, 0] == 0,
        "inactive": ~enc.available[pins.prov],
        "region": pins.region == 0,
        "conflict": np.isin(keys, enc.conflicts.req * n + enc.conflicts.prov),
        "excluded": np.isin(keys, enc.excluded.req * n + enc.excluded.prov),
    }


def broken_rule(enc: Encoded, pins: Pairs) -> list[str | None]:
    """Per pin, the first hard rule it breaks (funnel order), or None."""
    masks = rule_masks(enc, pins)
    out: list[str | None] = [None] * len(pins.req)
    for rule, mask in reversed(masks.items()):
        for i in np.flatnonzero(mask).tolist():
            out[i] = rule
    return out


def keep_pins(ctx: Context, required: PairSet, optional: PairSet) -> Pairs:
    """Score the pins; raise for a bad required pin, drop bad or over-capacity optional ones.

    Optional pins (a re-match's default fixed set) that no longer fit a provider's capacity
    are dropped lowest gain first, so the provider keeps its best pairs.
    """
    enc = ctx.enc
    both = PairSet(np.r_[required.req, optional.req], np.r_[required.prov, optional.prov])
    pins = pair_values(ctx, both)
    broken = broken_rule(enc, pins)
    is_required = np.arange(len(both)) < len(required)
    for i in np.flatnonzero(is_required).tolist():
        if broken[i] is not None:
            pair = (enc.req_ids[pins.req[i]], enc.prov_ids[pins.prov[i]])
            raise Infeasible(f"pinned pair {pair!r} breaks the hard rule {broken[i]!r}")
    gain = pins.fit * ctx.priority[pins.req]
    order = np.lexsort((pins.req, -gain, ~is_required))
    room = np.maximum(enc.free, 0)
    keep = np.zeros(len(both), dtype=bool)
    for i in order.tolist():
        if broken[i] is None and (room[pins.prov[i]] > 0 or is_required[i]):
            room[pins.prov[i]] -= 1
            keep[i] = True
    over = np.flatnonzero(room < 0)
    if len(over):
        p = int(over[0])
        raise Infeasible(f"provider {enc.prov_ids[p]!r} has more pins than free capacity")
    kept = pins.take(keep)
    order = np.argsort(kept.req, kind="stable")
    return kept.take(order)


def pin_multipliers(ctx: Context, pins: Pairs) -> NDArray[np.float64]:
    """Fairness multipliers of pins: a provider's pins take its first slots, best first."""
    if ctx.weights.fairness == 0 or len(pins.req) == 0:
        return np.ones(len(pins.req))
    gain = pins.fit * ctx.priority[pins.req]
    order = np.lexsort((pins.req, -gain, pins.prov))
    sorted_prov = pins.prov[order]
    start = np.searchsorted(sorted_prov, sorted_prov)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - start
    slots = (ctx.enc.load[pins.prov] + rank).astype(np.float64)
    return np.power(1.0 - ctx.weights.fairness, slots)
