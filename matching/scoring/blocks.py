"""Candidate blocks: which providers each group of requests is scored against.

A block pairs a group of open requests with the providers that could possibly take them:

1. **Category.** Only providers with the request's skill, active, not paused and with free
   capacity (the provider-level hard rules) — the rest are counted, never scored.
2. **Province.** Within a category, requests are grouped by province (first two digits of
   the county code; neighbouring small groups merged so each block fills about one chunk),
   and a group is scored only against providers that can serve *at least one* of its
   counties — on site through a served prefix, or anywhere, or remotely. A provider left
   out is, by construction, removed by the region rule for every request of the group,
   so results are exactly those of category-only blocking, at about half the work when
   most providers serve one province.

Industry and region fits are computed once per category as small tables over distinct
request codes × providers and sliced per block; conflicts and exclusions are re-indexed
into block coordinates. Nothing here is ever requests × providers in size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.encode import Encoded, PairSet
from matching.scoring.features import industry_table, rating_fit, region_table, unique_codes
from matching.scoring.text import TextModel
from matching.scoring.weights import Weights

__all__ = ["CHUNK_CELLS", "Block", "blocks", "chunks", "provider_rules"]

#: Upper bound on cells of one dense (chunk × block) work array: ~16 MB of float64.
CHUNK_CELLS = 1 << 21


@dataclass(frozen=True, slots=True)
class Block:
    """One group of open requests and the providers it is scored against.

    ``m`` requests, ``b`` providers; every per-provider array has shape ``(b,)`` and is in
    increasing provider index (= id) order, so column order is the tie-break order.
    """

    rows: NDArray[np.intp]  # (m,) canonical request indices
    provs: NDArray[np.intp]  # (b,) canonical provider indices
    outside: int  # providers of the category left out: region-removed for every row
    skill: NDArray[np.float64]  # (b,) level / 3
    rating: NDArray[np.float64]  # (b,)
    provider_part: NDArray[np.float64]  # (b,) w_skill × skill + w_rating × rating
    industry: NDArray[np.uint8]  # (n_codes, b) in twelfths
    industry_of: NDArray[np.intp]  # (m,) row into ``industry``
    region: NDArray[np.uint8]  # (n_regions, b) RegionLevel
    region_of: NDArray[np.intp]  # (m,) row into ``region``
    text_t: sp.csr_array  # (n_terms, b) provider TF-IDF, transposed for row-chunk products
    forbidden: tuple[PairSet, PairSet]  # conflicts, exclusions as (row pos, column pos)
    secondary: bool = False  # the category is the rows' secondary one: skill discounted


@dataclass(frozen=True, slots=True)
class _Category:
    """Lookups shared by a category's blocks; provider arrays have shape ``(b,)``."""

    cat: int
    rows: NDArray[np.intp]
    provs: NDArray[np.intp]
    skill: NDArray[np.float64]
    rating: NDArray[np.float64]
    industry: NDArray[np.uint8]  # (distinct codes of rows, b)
    industry_of: NDArray[np.intp]  # (len(rows),)
    region: NDArray[np.uint8]  # (distinct counties of rows, b)
    region_of: NDArray[np.intp]  # (len(rows),)
    secondary: bool = False


def provider_rules(enc: Encoded, cat: int) -> tuple[NDArray[np.intp], NDArray[np.int64]]:
    """Providers with skill ``cat`` passing the provider-level rules (sorted), and the
    counts removed by ``category``, ``inactive`` and ``capacity``, shape ``(3,)``."""
    skilled = np.sort(enc.skill[:, [cat]].tocoo().row.astype(np.intp))
    up = enc.available[skilled]
    has_room = enc.free[skilled] > 0
    counts = np.array([enc.n_prov - len(skilled), (~up).sum(), (up & ~has_room).sum()])
    return skilled[up & has_room], counts.astype(np.int64)


def chunks(n_rows: int, n_cols: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` row ranges whose ``(rows, n_cols)`` arrays fit in CHUNK_CELLS."""
    step = max(1, CHUNK_CELLS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def _category(
    enc: Encoded, cat: int, rows: NDArray[np.intp], provs: NDArray[np.intp], factor: float | None
) -> _Category:
    """Lookups of category ``cat`` for ``rows``; ``factor`` scales the skill fit when it is
    the rows' secondary category (None: their primary one)."""
    codes, industry_of = unique_codes(list(enc.req_industry[rows]))
    counties, region_of = unique_codes(list(enc.req_region[rows]))
    return _Category(
        cat=cat,
        rows=rows,
        provs=provs,
        skill=enc.skill[provs][:, [cat]].toarray().ravel()
        / 3.0
        * (1.0 if factor is None else factor),
        rating=rating_fit(enc.rating[provs]),
        industry=industry_table(list(codes), [enc.prov_industries[p] for p in provs]),
        industry_of=industry_of,
        region=region_table(
            list(counties), [enc.prov_regions[p] for p in provs], enc.remote[provs]
        ),
        region_of=region_of,
        secondary=factor is not None,
    )


def _groups(enc: Encoded, cat: _Category) -> Iterator[NDArray[np.intp]]:
    """Positions (into ``cat.rows``) of each province group, small neighbours merged.

    A group closes once it has about a chunk's worth of rows, so per-block set-up (slicing
    tables, gathering provider vectors) stays small against the scoring it enables.
    """
    province = np.array([str(code)[:2] for code in enc.req_region[cat.rows]])
    order = np.argsort(province, kind="stable")
    starts = np.flatnonzero(np.r_[True, province[order][1:] != province[order][:-1]])
    bounds = [*starts.tolist(), len(order)]
    target = max(1, CHUNK_CELLS // max(len(cat.provs), 1) // 2)
    group_start = 0
    for i in range(1, len(bounds)):
        if bounds[i] - bounds[group_start] >= target or i == len(bounds) - 1:
            yield np.sort(order[bounds[group_start] : bounds[i]])
            group_start = i


def _local(pairs: PairSet, row_pos: NDArray[np.intp], col_pos: NDArray[np.intp]) -> PairSet:
    """Pairs re-indexed into block coordinates, dropping those outside the block."""
    r, c = row_pos[pairs.req], col_pos[pairs.prov]
    keep = (r >= 0) & (c >= 0)
    order = np.lexsort((c[keep], r[keep]))
    return PairSet(r[keep][order], c[keep][order])


def _block(
    enc: Encoded, model: TextModel, cat: _Category, group: NDArray[np.intp], weights: Weights
) -> Block:
    counties, region_of = np.unique(cat.region_of[group], return_inverse=True)
    cols = np.flatnonzero((cat.region[counties] > 0).any(axis=0))
    codes, industry_of = np.unique(cat.industry_of[group], return_inverse=True)
    rows, provs = cat.rows[group], cat.provs[cols]
    row_pos = np.full(enc.n_req, -1, dtype=np.intp)
    row_pos[rows] = np.arange(len(rows))
    col_pos = np.full(enc.n_prov, -1, dtype=np.intp)
    col_pos[provs] = np.arange(len(provs))
    w = weights.normalised
    return Block(
        rows=rows,
        provs=provs,
        outside=len(cat.provs) - len(cols),
        skill=cat.skill[cols],
        rating=cat.rating[cols],
        provider_part=w[0] * cat.skill[cols] + w[4] * cat.rating[cols],
        industry=cat.industry[np.ix_(codes, cols)],
        industry_of=industry_of.astype(np.intp),
        region=cat.region[np.ix_(counties, cols)],
        region_of=region_of.astype(np.intp),
        text_t=sp.csr_array(model.providers[provs].T),
        forbidden=(_local(enc.conflicts, row_pos, col_pos), _local(enc.excluded, row_pos, col_pos)),
        secondary=cat.secondary,
    )


def blocks(
    enc: Encoded,
    model: TextModel,
    open_: NDArray[np.bool_],
    weights: Weights,
    removed: NDArray[np.int64],
) -> Iterator[Block]:
    """Every non-empty block of the open requests; fills ``removed[:, :3]`` on the way.

    A request with secondary categories is also scored in their blocks (``secondary``
    set, skill fit times ``weights.secondary``); rule counts come from its primary
    category only, so an unmatched reason counts each provider once.

    Parameters
    ----------
    enc : Encoded
    model : TextModel
        Fitted on ``enc.prov_text``.
    open_ : ndarray of bool, shape (n_req,)
    weights : Weights
    removed : ndarray of int64, shape (n_req, n_rules)
        Its first three columns (category, inactive, capacity) are written for every open
        request, including those of categories without any scorable provider.
    """
    extra = enc.extra.tocsc()
    for cat in range(len(enc.categories)):
        rows = np.flatnonzero(open_ & (enc.req_cat == cat))
        also = extra.indices[extra.indptr[cat] : extra.indptr[cat + 1]].astype(np.intp)
        also = np.sort(also[open_[also]])
        if len(rows) == 0 and len(also) == 0:
            continue
        provs, counts = provider_rules(enc, cat)
        removed[rows, :3] = counts
        if len(provs) == 0:
            continue
        for members, factor in ((rows, None), (also, weights.secondary)):
            if len(members):
                shared = _category(enc, cat, members, provs, factor)
                for group in _groups(enc, shared):
                    yield _block(enc, model, shared, group, weights)
