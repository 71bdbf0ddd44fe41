"""Explanations of chosen pairs and reasons for unmatched requests, in Chinese and English.

A pair's explanation lists each feature's contribution ``priority × w_f × f_f`` (these sum
to its score) and a one-line reason a coordinator can read at a glance. An unmatched
request names the hard rule that removed its last candidates — the last rule of the
funnel (:data:`matching.scoring.candidates.RULES`) that removed any provider — with the counts
per rule, or, when it had candidates, the requests that took their slots.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matching.encode import Encoded
from matching.explaining.wording import (
    PairFacts,
    category_words,
    pair_reason,
    unmatched_message,
)
from matching.pins import Context, Pairs, pin_multipliers
from matching.problem import Id
from matching.result import Assignment, Candidate, Explanation, Reason, Unmatched
from matching.scoring.candidates import RULES, Candidates
from matching.scoring.features import REGION_FIT
from matching.scoring.text import shared_terms
from matching.scoring.weights import FEATURES, Weights

__all__ = [
    "TAKEN_BY_LIMIT",
    "Kept",
    "build_assignments",
    "build_unmatched",
    "collect_kept",
    "explain_pairs",
    "industry_label",
    "ranked_candidates",
    "unmatched_reasons",
]

#: At most this many requests are named in a "capacity taken" reason.
TAKEN_BY_LIMIT = 10

_LEVELS = (0, 1, 3, 4, 5)  # GB/T 4754 level boundaries: section, division, group, class
#: Origin of a pair: 0 decided by this run, 1 pinned by a coordinator, 2 kept by a re-match.
SOLVED, PINNED, KEPT = 0, 1, 2


def industry_label(code: str, served: Sequence[str]) -> str | None:
    """The shared industry code shown in a reason (``"C17"``), or None if nothing shared.

    For a served prefix nested with the request code, the shorter of the two (the level
    at which they agree); otherwise their longest common prefix at a level boundary.
    """
    best = ""
    for prefix in served:
        if code.startswith(prefix) or prefix.startswith(code):
            shared = min(code, prefix, key=len)
        else:
            shared = next(code[:n] for n in reversed(_LEVELS) if code[:n] == prefix[:n])
        best = max(best, shared, key=len)
    return best or None


def _evidence(
    ctx: Context, req: NDArray[np.intp], prov: NDArray[np.intp]
) -> list[list[tuple[str, str]]]:
    """Per pair, the (zh, en) words its two texts share, most weight first, deduplicated."""
    glossary = ctx.enc.lexicon.terms
    out = []
    for tokens in shared_terms(ctx.model, ctx.text, req, prov):
        named = [glossary.name(t) for t in tokens]
        out.append(list(dict.fromkeys(named)))
    return out


def _secondary_match(enc: Encoded, r: int, p: int) -> tuple[int, int]:
    """The secondary category of request ``r`` provider ``p`` is best at, and its level
    (ties to the lower category index)."""
    extra = enc.extra
    cats = extra.indices[extra.indptr[r] : extra.indptr[r + 1]]
    levels = np.asarray(enc.skill[[p] * len(cats), cats]).ravel()
    best = int(np.argmax(levels))
    return int(cats[best]), int(levels[best])


def explain_pairs(
    ctx: Context,
    req: NDArray[np.intp],
    prov: NDArray[np.intp],
    features: NDArray[np.float64],
    slot: NDArray[np.float64],
    origin: NDArray[np.int8],
) -> list[Explanation]:
    """One :class:`Explanation` per pair.

    Parameters
    ----------
    ctx : Context
        The run's problem, weights, text model and request vectors.
    req, prov : ndarray of intp, shape (n,)
        Canonical indices of the pairs.
    features : ndarray of float64, shape (n, 5)
    slot : ndarray of float64, shape (n,)
        Fairness multiplier of each pair's slot.
    origin : ndarray of int8, shape (n,)
        :data:`SOLVED`, :data:`PINNED` or :data:`KEPT` (the reason line says which).
    """
    enc, priority = ctx.enc, ctx.priority[req]
    contrib = (features * np.asarray(ctx.weights.normalised)[None, :] * priority[:, None]).tolist()
    region = np.searchsorted(REGION_FIT, features[:, 3]).tolist()  # exact LUT values
    values = features.tolist()
    evidence = _evidence(ctx, req, prov)
    primary = np.asarray(enc.skill[prov, enc.req_cat[req]]).ravel().tolist() if len(req) else []
    out = []
    for i, (r, p) in enumerate(zip(req.tolist(), prov.tolist(), strict=True)):
        served = enc.prov_industries[p]
        category, level = enc.req_cat[r], primary[i]
        # not covering the primary, or better on a secondary category (level x share)
        secondary = primary[i] == 0 or values[i][0] > primary[i] / 3.0 + 1e-12
        if secondary:
            category, level = _secondary_match(enc, r, p)
        facts = PairFacts(
            origin=int(origin[i]),
            category=enc.categories[category],
            secondary=secondary,
            level=level,
            kind=enc.prov_kind[p] if enc.prov_kind else "expert",
            region=region[i],
            industry=industry_label(str(enc.req_industry[r]), served) if served else None,
            any_industry=not served,
            text=values[i][1],
            evidence=evidence[i],
            contributions=contrib[i],
        )
        zh, en = pair_reason(facts, enc.lexicon)
        out.append(
            Explanation(
                features=dict(zip(FEATURES, values[i], strict=True)),
                contributions=dict(zip(FEATURES, contrib[i], strict=True)),
                priority=float(priority[i]),
                slot_multiplier=float(slot[i]),
                reason_zh=zh,
                reason_en=en,
            )
        )
    return out


def unmatched_reasons(
    enc: Encoded,
    rows: NDArray[np.intp],
    removed: NDArray[np.int64],
    candidates_of: dict[int, NDArray[np.intp]],
    holders: dict[int, list[tuple[float, int]]],
    weights: Weights,
) -> list[Unmatched]:
    """Reasons for the unmatched open requests ``rows`` (canonical indices, shape (m,)).

    ``removed`` is ``(n_req, len(RULES))``; ``candidates_of`` maps a request to its
    candidate providers; ``holders`` maps a provider to ``(gain, request)`` of the requests
    assigned to it (pins included).
    """
    out = []
    for r in rows.tolist():
        counts = dict(zip(RULES, removed[r].tolist(), strict=True))
        fill: dict[str, object] = {
            "region": enc.req_region[r],
            "ent": enc.req_enterprise[r],
            "min": weights.min_score,
        }
        taken: tuple[Id, ...] = ()
        if r in candidates_of:
            reason = Reason.CAPACITY_TAKEN
            taken = _taken_by(enc, candidates_of[r], holders)
            fill["taken"] = ", ".join(str(t) for t in taken[:5]) or "-"
        else:
            hit = [rule for rule in RULES if counts[rule]]
            reason = Reason(hit[-1]) if hit else Reason.CATEGORY
        extra = enc.extra.indices[enc.extra.indptr[r] : enc.extra.indptr[r + 1]]
        zh, en = unmatched_message(
            reason, counts, [enc.categories[enc.req_cat[r]]], enc.lexicon, fill
        )
        if len(extra) and reason is not Reason.CAPACITY_TAKEN:
            also_zh, also_en = category_words([enc.categories[c] for c in extra], enc.lexicon)
            zh += f"；次要类别{also_zh}也没有可用的服务方"
            en += f"; no usable provider for the secondary {also_en} either"
        out.append(Unmatched(enc.req_ids[r], reason, counts, taken, zh, en))
    return out


def _taken_by(
    enc: Encoded, providers: NDArray[np.intp], holders: dict[int, list[tuple[float, int]]]
) -> tuple[Id, ...]:
    """Requests holding the candidates' slots, best gain first, ties by id."""
    held = sorted(
        {item for p in providers.tolist() for item in holders.get(p, ())},
        key=lambda t: (-t[0], t[1]),
    )
    return tuple(enc.req_ids[r] for _, r in held[:TAKEN_BY_LIMIT])


def holders_of(
    req: NDArray[np.intp], prov: NDArray[np.intp], gain: NDArray[np.float64]
) -> dict[int, list[tuple[float, int]]]:
    """Provider -> ``(gain, request)`` of its assigned requests."""
    out: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for r, p, g in zip(req.tolist(), prov.tolist(), gain.tolist(), strict=True):
        out[p].append((g, r))
    return out


def ranked_candidates(
    ctx: Context, cand: Candidates, chosen: NDArray[np.intp], limit: int | None
) -> dict[Id, tuple[Candidate, ...]]:
    """Per request with candidates: best first, at most ``limit`` (all when None), leaving
    out ``chosen[r]``, the provider request ``r`` got (-1: none); ``chosen`` has shape (n_req,).
    """
    keep = np.flatnonzero(cand.prov != chosen[cand.req])
    req = cand.req[keep]
    first = np.searchsorted(req, req)  # start of each request's group
    keep = keep[np.arange(len(keep)) - first < (len(keep) if limit is None else limit)]
    scores = (cand.fit[keep] * ctx.priority[cand.req[keep]]).tolist()
    fits, features = cand.fit[keep].tolist(), cand.features[keep].tolist()
    grouped: dict[Id, list[Candidate]] = defaultdict(list)
    for j, (r, p) in enumerate(zip(cand.req[keep].tolist(), cand.prov[keep].tolist(), strict=True)):
        features_j = dict(zip(FEATURES, features[j], strict=True))
        grouped[ctx.enc.req_ids[r]].append(
            Candidate(ctx.enc.prov_ids[p], scores[j], fits[j], features_j)
        )
    empty = {ctx.enc.req_ids[r]: () for r in np.unique(cand.req).tolist()}
    return {**empty, **{r: tuple(c) for r, c in grouped.items()}}


@dataclass(frozen=True, slots=True)
class Kept:
    """Every kept pair (pins and solved), sorted by request index; arrays of shape (n,)."""

    req: NDArray[np.intp]
    prov: NDArray[np.intp]
    features: NDArray[np.float64]
    score: NDArray[np.float64]
    slot: NDArray[np.float64]
    origin: NDArray[np.int8]  # SOLVED, PINNED or KEPT

    @property
    def gain(self) -> NDArray[np.float64]:
        return self.score * self.slot

    @property
    def pinned(self) -> NDArray[np.bool_]:
        """Pairs not decided by this run (pinned or kept)."""
        return np.not_equal(self.origin, SOLVED)


def collect_kept(
    ctx: Context,
    pins: Pairs,
    cand: Candidates,
    picks: NDArray[np.intp],
    multiplier: NDArray[np.float64],
) -> Kept:
    """Pins and solved pairs together, sorted by request index.

    A pin is :data:`PINNED` when the problem pins it (a coordinator's decision), else
    :data:`KEPT` (a pair a re-match holds fixed).
    """
    req = np.r_[pins.req, cand.req[picks]]
    order = np.argsort(req, kind="stable")
    fit = np.r_[pins.fit, cand.fit[picks]][order]
    n = max(ctx.enc.n_prov, 1)
    by_problem = np.isin(pins.req * n + pins.prov, ctx.enc.pinned.req * n + ctx.enc.pinned.prov)
    origin = np.r_[np.where(by_problem, PINNED, KEPT), np.full(len(picks), SOLVED)]
    return Kept(
        req=req[order],
        prov=np.r_[pins.prov, cand.prov[picks]][order],
        features=np.r_[pins.features, cand.features[picks]][order],
        score=fit * ctx.priority[req[order]],
        slot=np.r_[pin_multipliers(ctx, pins), multiplier][order],
        origin=origin.astype(np.int8)[order],
    )


def build_assignments(ctx: Context, kept: Kept) -> tuple[Assignment, ...]:
    """Kept pairs as :class:`Assignment`, with explanations, sorted by request id."""
    notes = explain_pairs(ctx, kept.req, kept.prov, kept.features, kept.slot, kept.origin)
    ids_r, ids_p = ctx.enc.req_ids, ctx.enc.prov_ids
    return tuple(
        Assignment(ids_r[r], ids_p[p], float(s), float(g), bool(k), note)
        for r, p, s, g, k, note in zip(
            kept.req.tolist(),
            kept.prov.tolist(),
            kept.score.tolist(),
            kept.gain.tolist(),
            kept.pinned.tolist(),
            notes,
            strict=True,
        )
    )


def build_unmatched(
    ctx: Context, cand: Candidates, open_: NDArray[np.bool_], kept: Kept
) -> tuple[Unmatched, ...]:
    """Reasons for the open requests left without a provider."""
    matched = np.zeros(ctx.enc.n_req, dtype=bool)
    matched[kept.req] = True
    rows = np.flatnonzero(open_ & ~matched)
    lo = np.searchsorted(cand.req, rows, side="left")
    hi = np.searchsorted(cand.req, rows, side="right")
    candidates_of = {int(r): cand.prov[a:b] for r, a, b in zip(rows, lo, hi, strict=True) if b > a}
    holders = holders_of(kept.req, kept.prov, kept.gain)
    return tuple(
        unmatched_reasons(ctx.enc, rows, cand.removed, candidates_of, holders, ctx.weights)
    )
