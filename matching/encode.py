"""Canonical, integer-coded form of a validated problem: the only place ids meet indices.

Requests and providers are sorted by id, so every index-based tie-break downstream is a
tie-break by id and the result cannot depend on input order. Categories and enterprises
become small integers; provider skills become a sparse ``(n_providers, n_categories)``
matrix of levels; conflicts and exclusions become sorted ``(request, provider)`` index
pairs. Everything after this module works on arrays only (openreview ``encoder.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.problem import Id, Problem, Tier
from matching.scoring.lexicon import Lexicon

__all__ = ["Encoded", "PairSet", "encode", "id_key"]

_TIER_RANK = {tier.value: tier.rank for tier in Tier}


def id_key(value: Id) -> tuple[bool, int, str]:
    """Total order over mixed ``int`` / ``str`` ids: ints first (numerically), then strs."""
    if isinstance(value, str):
        return (True, 0, value)
    return (False, value, "")


def _sorted_order(ids: Sequence[Id]) -> NDArray[np.intp]:
    """Positions of ``ids`` in :func:`id_key` order. Database keys are all ints, and a
    numpy sort of those is the same order as the keyed sort (ids are unique) at a tenth of
    its cost, paid by every re-match part for its thousands of providers."""
    if set(map(type, ids)) <= {int}:
        try:
            return np.argsort(np.array(ids, dtype=np.int64), kind="stable").astype(np.intp)
        except OverflowError:  # beyond int64: the keyed sort below handles any int
            pass
    return np.array(sorted(range(len(ids)), key=lambda i: id_key(ids[i])), dtype=np.intp)


@dataclass(frozen=True, slots=True)
class PairSet:
    """Sorted, unique ``(request index, provider index)`` pairs; shape ``(n_pairs,)`` each."""

    req: NDArray[np.intp]
    prov: NDArray[np.intp]

    @classmethod
    def of(cls, pairs: Iterable[tuple[int, int]]) -> PairSet:
        """Deduplicate and sort by (request, provider)."""
        unique = sorted(set(pairs))
        req = np.array([r for r, _ in unique], dtype=np.intp)
        prov = np.array([p for _, p in unique], dtype=np.intp)
        return cls(req, prov)

    def __len__(self) -> int:
        return len(self.req)


@dataclass(frozen=True, slots=True)
class Encoded:
    """A problem in canonical order (sorted ids) with integer codes.

    Request arrays have shape ``(n_req,)``, provider arrays ``(n_prov,)``. ``skill`` is a
    CSR matrix ``(n_prov, n_categories)`` of levels 1–3. ``free`` is capacity minus load
    minus pinned pairs (may be negative when pins over-subscribe; the pipeline checks).
    """

    req_ids: tuple[Id, ...]
    prov_ids: tuple[Id, ...]
    categories: tuple[str, ...]
    req_cat: NDArray[np.intp]
    req_text: tuple[str, ...]
    req_industry: NDArray[np.object_]
    req_region: NDArray[np.object_]
    req_urgency: NDArray[np.int64]
    req_wanted: NDArray[np.int64]
    req_tier: NDArray[np.int64]
    req_enterprise: tuple[Id, ...]
    skill: sp.csr_array
    prov_text: tuple[str, ...]
    prov_industries: tuple[tuple[str, ...], ...]
    prov_regions: tuple[tuple[str, ...], ...]
    remote: NDArray[np.bool_]
    available: NDArray[np.bool_]
    free: NDArray[np.int64]
    load: NDArray[np.int64]
    rating: NDArray[np.float64]
    conflicts: PairSet
    excluded: PairSet
    pinned: PairSet
    prov_kind: tuple[str, ...] = ()
    lexicon: Lexicon = field(default_factory=Lexicon)
    req_extra: sp.csr_array | None = None  # (n_req, n_categories) 1 = secondary category

    @property
    def extra(self) -> sp.csr_array:
        """Secondary categories as a ``(n_req, n_categories)`` 0/1 matrix (empty if none)."""
        if self.req_extra is None:
            none = np.zeros(0, dtype=np.intp)
            shape = (self.n_req, len(self.categories))
            return sp.csr_array((np.zeros(0, dtype=np.int8), (none, none)), shape=shape)
        return self.req_extra

    @property
    def n_req(self) -> int:
        """Number of requests."""
        return len(self.req_ids)

    @property
    def n_prov(self) -> int:
        """Number of providers."""
        return len(self.prov_ids)


def _skills(problem: Problem, order: NDArray[np.intp], categories: dict[str, int]) -> sp.csr_array:
    maps = [problem.providers.skills[old] for old in order.tolist()]
    counts = np.fromiter(map(len, maps), dtype=np.intp, count=len(maps))
    rows = np.repeat(np.arange(len(maps), dtype=np.intp), counts)
    names = chain.from_iterable(maps)  # each map's keys, then its levels, in the same order
    cols = np.fromiter(map(categories.__getitem__, names), dtype=np.intp, count=len(rows))
    values = chain.from_iterable(skills.values() for skills in maps)
    levels = np.fromiter(values, dtype=np.int64, count=len(rows))
    shape = (len(order), len(categories))
    matrix = sp.csr_array((levels.astype(np.int8), (rows, cols)), shape=shape)
    matrix.sort_indices()
    return matrix


def _by_enterprise(enterprises: Sequence[Id]) -> dict[Id, list[int]]:
    index: dict[Id, list[int]] = defaultdict(list)
    for r, enterprise in enumerate(enterprises):
        index[enterprise].append(r)
    return index


def _conflicts(problem: Problem, order: NDArray[np.intp], of_ent: dict[Id, list[int]]) -> PairSet:
    pairs = [
        (r, p)
        for p, old in enumerate(order)
        for enterprise in problem.providers.conflicts[old]
        for r in of_ent.get(enterprise, ())
    ]
    return PairSet.of(pairs)


def _exclusions(
    problem: Problem, req_pos: dict[Id, int], prov_pos: dict[Id, int], of_ent: dict[Id, list[int]]
) -> PairSet:
    pairs: list[tuple[int, int]] = []
    for ex in problem.exclusions:
        p = prov_pos.get(ex.provider)
        if p is None:
            continue
        if ex.request is not None:
            pairs.extend((r, p) for r in ([req_pos[ex.request]] if ex.request in req_pos else []))
        elif ex.enterprise is not None:  # validated: exactly one of the two is set
            pairs.extend((r, p) for r in of_ent.get(ex.enterprise, ()))
    return PairSet.of(pairs)


def _extra(
    extra: Sequence[tuple[str, ...]],
    order: NDArray[np.intp],
    primary: NDArray[np.object_],
    categories: dict[str, int],
) -> sp.csr_array:
    """0/1 matrix of each request's secondary categories, its primary left out."""
    rows, cols = [], []
    for new, old in enumerate(order.tolist()):
        for c in set(extra[old]) - {primary[old]}:
            rows.append(new)
            cols.append(categories[c])
    shape = (len(order), len(categories))
    data = np.ones(len(rows), dtype=np.int8)
    matrix = sp.csr_array((data, (rows, cols)), shape=shape)
    matrix.sort_indices()
    return matrix


def encode(problem: Problem) -> Encoded:
    """Sort ``problem`` by ids and integer-code it. ``problem`` must be validated."""
    rq, pv = problem.requests, problem.providers
    r_order, p_order = _sorted_order(list(rq.id)), _sorted_order(list(pv.id))
    req_ids = tuple(rq.id[r_order])
    prov_ids = tuple(pv.id[p_order])
    req_pos = {rid: i for i, rid in enumerate(req_ids)}
    prov_pos = {pid: i for i, pid in enumerate(prov_ids)}
    names = set(rq.category) | {c for extra in rq.extra for c in extra}
    names |= set(chain.from_iterable(pv.skills))
    categories = tuple(sorted(names))
    cat_pos = {c: i for i, c in enumerate(categories)}
    enterprises = tuple(rq.enterprise[r_order])
    of_ent = _by_enterprise(enterprises)
    pinned = PairSet.of((req_pos[r], prov_pos[p]) for r, p in problem.pinned)
    free = (pv.capacity - pv.load)[p_order].astype(np.int64)
    return Encoded(
        req_ids=req_ids,
        prov_ids=prov_ids,
        categories=categories,
        req_cat=np.array([cat_pos[c] for c in rq.category[r_order]], dtype=np.intp),
        req_text=tuple(rq.text[r_order]),
        req_industry=rq.industry[r_order],
        req_region=rq.region[r_order],
        req_urgency=np.asarray(rq.urgency, dtype=np.int64)[r_order],
        req_wanted=np.asarray(rq.wanted, dtype=np.int64)[r_order],
        req_tier=np.array([_TIER_RANK[t] for t in rq.tier[r_order]], dtype=np.int64),
        req_enterprise=enterprises,
        skill=_skills(problem, p_order, cat_pos),
        prov_text=tuple(pv.expertise[p_order]),
        prov_industries=tuple(map(pv.industries.__getitem__, p_order.tolist())),
        prov_regions=tuple(map(pv.regions.__getitem__, p_order.tolist())),
        remote=np.asarray(pv.remote, dtype=bool)[p_order],
        available=(np.asarray(pv.active, dtype=bool) & ~np.asarray(pv.paused, dtype=bool))[p_order],
        free=free,
        load=np.asarray(pv.load, dtype=np.int64)[p_order],
        rating=np.asarray(pv.rating, dtype=np.float64)[p_order],
        conflicts=_conflicts(problem, p_order, of_ent),
        excluded=_exclusions(problem, req_pos, prov_pos, of_ent),
        pinned=pinned,
        prov_kind=tuple(str(k) for k in pv.kind[p_order]),
        req_extra=_extra(rq.extra, r_order, rq.category, cat_pos),
        lexicon=problem.lexicon,
    )
