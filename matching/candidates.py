"""Hard rules and top-K sparse candidates, blocked on category and chunked over requests.

Never materialises a requests × providers matrix. For each category, only the providers
with that skill are scored (the *block*), and the block's open requests are processed in
chunks whose dense ``(chunk, block)`` work arrays stay under :data:`CHUNK_CELLS` cells, so
memory is bounded by the largest block, not by the problem.

Each provider a request could not use is attributed to the *first* rule of the funnel that
removed it, giving per-request counts for unmatched reasons:

=============  ==========================================================
``category``   the provider does not cover the request's category
``inactive``   inactive or paused
``capacity``   no free capacity (capacity − load − pinned pairs <= 0)
``region``     region not served and no remote help
``conflict``   declared conflict of interest with the request's enterprise
``excluded``   an exclusion on the request or its enterprise
``min_score``  fit below ``weights.min_score``
=============  ==========================================================

The survivors' top ``weights.top_k`` by fit are kept (ties to the lower provider index,
i.e. the smaller id), with their five features, as flat sorted arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.encode import Encoded, PairSet
from matching.features import (
    INDUSTRY_FIT,
    REGION_FIT,
    fit_plane,
    industry_table,
    rating_fit,
    region_table,
    unique_codes,
)
from matching.text import TextModel
from matching.weights import Weights

__all__ = ["CHUNK_CELLS", "RULES", "Candidates", "generate"]

#: Funnel order of the hard rules (columns of :attr:`Candidates.removed`).
RULES: tuple[str, ...] = (
    "category",
    "inactive",
    "capacity",
    "region",
    "conflict",
    "excluded",
    "min_score",
)
#: Upper bound on cells of one dense (chunk × block) work array: ~16 MB of float64.
CHUNK_CELLS = 1 << 21


@dataclass(frozen=True, slots=True)
class Candidates:
    """Candidate pairs, sorted by request then decreasing fit then provider index.

    Attributes
    ----------
    req, prov : ndarray of intp, shape (n_pairs,)
        Canonical request / provider indices.
    features : ndarray of float64, shape (n_pairs, 5)
        Feature values in [0, 1], columns in :data:`matching.weights.FEATURES` order.
    fit : ndarray of float64, shape (n_pairs,)
        ``combine(features)``, >= ``weights.min_score``.
    removed : ndarray of int64, shape (n_req, len(RULES))
        Providers removed per rule for each open request (zero rows for the others).
    """

    req: NDArray[np.intp]
    prov: NDArray[np.intp]
    features: NDArray[np.float64]
    fit: NDArray[np.float64]
    removed: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.req)


@dataclass(frozen=True, slots=True)
class _Block:
    """One category's open requests and scorable providers, with their lookup tables."""

    rows: NDArray[np.intp]  # (m,) open request indices with this category
    provs: NDArray[np.intp]  # (b,) available providers with the skill and free capacity
    skill: NDArray[np.float64]  # (b,) level / 3
    rating: NDArray[np.float64]  # (b,)
    provider_part: NDArray[np.float64]  # (b,) w_skill × skill + w_rating × rating
    industry: NDArray[np.uint8]  # (n_codes, b) in twelfths
    industry_of: NDArray[np.intp]  # (m,) row into ``industry``
    region: NDArray[np.uint8]  # (n_regions, b) RegionLevel
    region_of: NDArray[np.intp]  # (m,)
    text_t: sp.csr_array  # (n_terms, b) provider TF-IDF, transposed
    forbidden: tuple[PairSet, PairSet]  # conflicts, exclusions in (row pos, block pos)


def _local_pairs(pairs: PairSet, row_pos: NDArray[np.intp], col_pos: NDArray[np.intp]) -> PairSet:
    """Pairs re-indexed into block coordinates, dropping those outside the block."""
    r, c = row_pos[pairs.req], col_pos[pairs.prov]
    keep = (r >= 0) & (c >= 0)
    order = np.lexsort((c[keep], r[keep]))
    return PairSet(r[keep][order], c[keep][order])


def _make_block(
    enc: Encoded,
    model: TextModel,
    rows: NDArray[np.intp],
    provs: NDArray[np.intp],
    cat: int,
    weights: Weights,
) -> _Block:
    codes, industry_of = unique_codes(list(enc.req_industry[rows]))
    regions, region_of = unique_codes(list(enc.req_region[rows]))
    row_pos = np.full(enc.n_req, -1, dtype=np.intp)
    row_pos[rows] = np.arange(len(rows))
    col_pos = np.full(enc.n_prov, -1, dtype=np.intp)
    col_pos[provs] = np.arange(len(provs))
    skill = enc.skill[provs][:, [cat]].toarray().ravel() / 3.0
    rating = rating_fit(enc.rating[provs])
    w = weights.normalised
    return _Block(
        rows=rows,
        provs=provs,
        skill=skill,
        rating=rating,
        provider_part=w[0] * skill + w[4] * rating,
        industry=industry_table(list(codes), [enc.prov_industries[p] for p in provs]),
        industry_of=industry_of,
        region=region_table(list(regions), [enc.prov_regions[p] for p in provs], enc.remote[provs]),
        region_of=region_of,
        text_t=sp.csr_array(model.providers[provs].T),
        forbidden=(
            _local_pairs(enc.conflicts, row_pos, col_pos),
            _local_pairs(enc.excluded, row_pos, col_pos),
        ),
    )


def _remove_pairs(
    allowed: NDArray[np.bool_], pairs: PairSet, start: int, stop: int
) -> NDArray[np.int64]:
    """Clear the pairs of rows ``start:stop`` in ``allowed``; count those still allowed."""
    lo, hi = np.searchsorted(pairs.req, [start, stop])
    r, c = pairs.req[lo:hi] - start, pairs.prov[lo:hi]
    hit = allowed[r, c]
    allowed[r, c] = False
    return np.bincount(r[hit], minlength=allowed.shape[0]).astype(np.int64)


def _top_k(
    fit: NDArray[np.float64], k: int, min_score: float
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Row/column indices of each row's ``k`` best entries with ``fit >= min_score``.

    Ties at the threshold go to the lower column index (the smaller provider id). The
    cumulative count that breaks ties only runs on rows with more tied entries than room.
    """
    n_cols = fit.shape[1]
    if n_cols <= k:
        return np.nonzero(fit >= min_score)
    # k-th largest via the k-th smallest of -fit: introselect degrades ~6x when most of
    # a row is the same removed value (-1) on the side it scans from.
    threshold = -np.partition(-fit, k - 1, axis=1)[:, k - 1]
    keep = fit > threshold[:, None]
    low = threshold < min_score
    if low.any():
        keep[low] &= fit[low] >= min_score
    tie = fit == threshold[:, None]
    tie[low] = False
    need = k - keep.sum(axis=1)
    excess = np.flatnonzero(tie.sum(axis=1) > need)
    if len(excess):
        tie[excess] &= np.cumsum(tie[excess], axis=1, dtype=np.int32) <= need[excess, None]
    keep |= tie
    return np.nonzero(keep)


def _chunks(n_rows: int, n_cols: int) -> Iterator[tuple[int, int]]:
    step = max(1, CHUNK_CELLS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Dense work arrays of one chunk, shape ``(m, b)``; ``fit`` is -1 where a rule removed."""

    fit: NDArray[np.float64]
    text: NDArray[np.float64]
    industry: NDArray[np.uint8]
    level: NDArray[np.uint8]
    counts: NDArray[np.int64]  # (m, 4): region, conflict, excluded, min_score


def _score_chunk(
    block: _Block, text_rows: sp.csr_array, start: int, stop: int, weights: Weights
) -> _Chunk:
    """Fit of rows ``start:stop`` against the block, with the per-request rules applied."""
    level = block.region[block.region_of[start:stop]]
    allowed = level > 0
    counts = np.zeros((stop - start, 4), dtype=np.int64)
    counts[:, 0] = len(block.provs) - allowed.sum(axis=1)
    counts[:, 1] = _remove_pairs(allowed, block.forbidden[0], start, stop)
    counts[:, 2] = _remove_pairs(allowed, block.forbidden[1], start, stop)
    text = (text_rows @ block.text_t).toarray()
    np.minimum(text, 1.0, out=text)
    industry = block.industry[block.industry_of[start:stop]]
    fit = fit_plane(block.provider_part, text, industry, level, weights)
    np.copyto(fit, -1.0, where=~allowed)
    counts[:, 3] = (fit < weights.min_score).sum(axis=1) - counts[:, :3].sum(axis=1)
    return _Chunk(fit, text, industry, level, counts)


def _scan_block(
    block: _Block, text_req: sp.csr_array, weights: Weights, removed: NDArray[np.int64]
) -> list[tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]]:
    """Candidates of every chunk of the block: (requests, providers, values (n, 6))."""
    out = []
    for start, stop in _chunks(len(block.rows), len(block.provs)):
        rows = block.rows[start:stop]
        chunk = _score_chunk(block, text_req[rows], start, stop, weights)
        removed[rows, 3:] = chunk.counts
        ri, ci = _top_k(chunk.fit, weights.top_k, weights.min_score)
        values = np.column_stack(
            [
                block.skill[ci],
                chunk.text[ri, ci],
                INDUSTRY_FIT[chunk.industry[ri, ci]],
                REGION_FIT[chunk.level[ri, ci]],
                block.rating[ci],
                chunk.fit[ri, ci],
            ]
        )
        out.append((rows[ri], block.provs[ci], values))
    return out


def _provider_rules(enc: Encoded, cat: int) -> tuple[NDArray[np.intp], NDArray[np.int64]]:
    """Providers with the skill that pass the provider-level rules, and counts removed."""
    column = enc.skill[:, [cat]].tocoo()
    skilled = np.sort(column.row.astype(np.intp))
    up = enc.available[skilled]
    has_room = enc.free[skilled] > 0
    counts = np.array([enc.n_prov - len(skilled), (~up).sum(), (up & ~has_room).sum()])
    return skilled[up & has_room], counts.astype(np.int64)


def generate(
    enc: Encoded,
    model: TextModel,
    text_req: sp.csr_array,
    open_: NDArray[np.bool_],
    weights: Weights,
) -> Candidates:
    """Apply the hard rules and keep the top-K candidates of every open request.

    Parameters
    ----------
    enc : Encoded
        The canonical problem.
    model : TextModel
        Fitted on ``enc.prov_text`` (provider rows in canonical order).
    text_req : csr_array, shape (n_req, n_terms)
        Request TF-IDF rows in canonical order.
    open_ : ndarray of bool, shape (n_req,)
        Requests to generate candidates for (pinned / fixed ones are not open).
    weights : Weights

    Returns
    -------
    Candidates
    """
    removed = np.zeros((enc.n_req, len(RULES)), dtype=np.int64)
    parts: list[tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]] = []
    for cat in range(len(enc.categories)):
        rows = np.flatnonzero(open_ & (enc.req_cat == cat))
        if len(rows) == 0:
            continue
        provs, counts = _provider_rules(enc, cat)
        removed[rows, :3] = counts
        if len(provs):
            block = _make_block(enc, model, rows, provs, cat, weights)
            parts.extend(_scan_block(block, text_req, weights, removed))
    return _assemble(parts, removed)


def _assemble(
    parts: list[tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]],
    removed: NDArray[np.int64],
) -> Candidates:
    if parts:
        req = np.concatenate([p[0] for p in parts])
        prov = np.concatenate([p[1] for p in parts])
        values = np.concatenate([p[2] for p in parts])
    else:
        req, prov, values = np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros((0, 6))
    order = np.lexsort((prov, -values[:, 5], req))
    return Candidates(req[order], prov[order], values[order, :5], values[order, 5], removed)
