"""Hard rules and top-K sparse candidates over blocks, chunked over requests.

Never materialises a requests × providers matrix: requests are scored only against their
block's providers (:mod:`matching.scoring.blocks`: same category, provider-level rules passed,
able to serve the group's province), in chunks whose dense ``(chunk, block)`` work arrays
stay under :data:`~matching.scoring.blocks.CHUNK_CELLS` cells, so memory is bounded by the
largest block, not by the problem.

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

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.encode import Encoded, PairSet
from matching.scoring.blocks import Block, blocks, chunks
from matching.scoring.features import context_code, fit_plane, split_code
from matching.scoring.text import TextModel
from matching.scoring.weights import Weights

__all__ = ["RULES", "Candidates", "generate"]

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


@dataclass(frozen=True, slots=True)
class Candidates:
    """Candidate pairs, sorted by request then decreasing fit then provider index.

    Attributes
    ----------
    req, prov : ndarray of intp, shape (n_pairs,)
        Canonical request / provider indices.
    features : ndarray of float64, shape (n_pairs, 5)
        Feature values in [0, 1], columns in :data:`matching.scoring.weights.FEATURES` order.
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


def _remove_pairs(
    fit: NDArray[np.float64], pairs: PairSet, start: int, stop: int
) -> NDArray[np.int64]:
    """Remove (set to -inf) the pairs of rows ``start:stop``; count those not yet removed."""
    lo, hi = np.searchsorted(pairs.req, [start, stop])
    r, c = pairs.req[lo:hi] - start, pairs.prov[lo:hi]
    hit = np.isfinite(fit[r, c])
    fit[r, c] = -np.inf
    return np.bincount(r[hit], minlength=fit.shape[0]).astype(np.int64)


def _top_k(
    fit: NDArray[np.float64], k: int, min_score: float
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Row/column indices of each row's ``k`` best entries with ``fit >= min_score``.

    Ties at the threshold go to the lower column index (the smaller provider id). The
    cumulative count that breaks ties only runs on rows with more tied entries than room.
    """
    n_cols = fit.shape[1]
    if n_cols <= k:
        rows, cols = np.nonzero(fit >= min_score)
        return rows, cols
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
    rows, cols = np.nonzero(keep)
    return rows, cols


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Dense work arrays of one chunk, shape ``(m, b)``; ``fit`` is -inf where removed."""

    fit: NDArray[np.float64]
    text: NDArray[np.float64]
    code: NDArray[np.uint8]  # context codes: industry twelfths × 6 + region level
    counts: NDArray[np.int64]  # (m, 4): region, conflict, excluded, min_score


def _score_chunk(
    block: Block, text_rows: sp.csr_array, start: int, stop: int, weights: Weights
) -> _Chunk:
    """Fit of rows ``start:stop`` against the block, with the per-request rules applied."""
    level = block.region[block.region_of[start:stop]]
    counts = np.zeros((stop - start, 4), dtype=np.int64)
    counts[:, 0] = block.outside + (level == 0).sum(axis=1)
    code = context_code(block.industry[block.industry_of[start:stop]], level)
    text = (text_rows @ block.text_t).toarray()
    np.minimum(text, 1.0, out=text)
    fit = fit_plane(block.provider_part, text, code, weights)
    counts[:, 1] = _remove_pairs(fit, block.forbidden[0], start, stop)
    counts[:, 2] = _remove_pairs(fit, block.forbidden[1], start, stop)
    in_plane = counts[:, :3].sum(axis=1) - block.outside  # removed entries of ``fit``
    counts[:, 3] = (fit < weights.min_score).sum(axis=1) - in_plane
    return _Chunk(fit, text, code, counts)


def _scan_block(
    block: Block, text_req: sp.csr_array, weights: Weights, removed: NDArray[np.int64]
) -> list[tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]]:
    """Candidates of every chunk of the block: (requests, providers, values (n, 6)).

    Each request's entries are contiguous and sorted by decreasing fit, then provider.
    """
    out = []
    for start, stop in chunks(len(block.rows), len(block.provs)):
        rows = block.rows[start:stop]
        chunk = _score_chunk(block, text_req[rows], start, stop, weights)
        if not block.secondary:
            removed[rows, 3:] = chunk.counts
        ri, ci = _top_k(chunk.fit, weights.top_k, weights.min_score)
        best_first = np.lexsort((-chunk.fit[ri, ci], ri))  # stable: columns stay ascending
        ri, ci = ri[best_first], ci[best_first]
        industry, region = split_code(chunk.code[ri, ci])
        values = np.column_stack(
            [
                block.skill[ci],
                chunk.text[ri, ci],
                industry,
                region,
                block.rating[ci],
                chunk.fit[ri, ci],
            ]
        )
        out.append((rows[ri], block.provs[ci], values))
    return out


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
    merge = False
    for block in blocks(enc, model, open_, weights, removed):
        parts.extend(_scan_block(block, text_req, weights, removed))
        merge |= block.secondary
    if merge:
        parts = [_merge(parts, weights.top_k)]
    return _assemble(parts, removed)


def _merge(
    parts: list[tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]], k: int
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """One run per request out of several blocks' (primary and secondary categories).

    A provider scored in two of a request's blocks keeps its better pair; then the request
    keeps its ``k`` best, ties to the lower provider index, as a single block would.
    """
    req = np.concatenate([p[0] for p in parts])
    prov = np.concatenate([p[1] for p in parts])
    values = np.concatenate([p[2] for p in parts])
    fit = values[:, 5]
    order = np.lexsort((-fit, prov, req))
    req, prov, values = req[order], prov[order], values[order]
    first = np.r_[True, (req[1:] != req[:-1]) | (prov[1:] != prov[:-1])][: len(req)]
    req, prov, values = req[first], prov[first], values[first]
    order = np.lexsort((prov, -values[:, 5], req))
    req, prov, values = req[order], prov[order], values[order]
    start = np.searchsorted(req, req)
    keep = np.arange(len(req)) - start < k
    return req[keep], prov[keep], values[keep]


def _assemble(
    parts: list[tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]],
    removed: NDArray[np.int64],
) -> Candidates:
    """Concatenate the chunks' runs and put the requests' runs in request order.

    A request's candidates come from one chunk, already best first, so sorting the runs
    by request (n_req keys) replaces a lexsort of all pairs (~10x cheaper at 2M pairs).
    """
    if not parts:
        empty = np.zeros(0, np.intp)
        return Candidates(empty, empty, np.zeros((0, 5)), np.zeros(0), removed)
    req = np.concatenate([p[0] for p in parts])
    prov = np.concatenate([p[1] for p in parts])
    values = np.concatenate([p[2] for p in parts])
    starts = np.flatnonzero(np.diff(req, prepend=-1))
    lengths = np.diff(np.append(starts, len(req)))
    runs = np.argsort(req[starts])
    shift = starts[runs] - (np.cumsum(lengths[runs]) - lengths[runs])
    order = np.repeat(shift, lengths[runs]) + np.arange(len(req))
    return Candidates(req[order], prov[order], values[order, :5], values[order, 5], removed)
