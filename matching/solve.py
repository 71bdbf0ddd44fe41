"""Exact capacitated assignment of requests to providers, with an optimality certificate.

Problem (an integral LP because its constraint matrix is totally unimodular)::

    maximise    sum_ij g_ij x_ij
    subject to  sum_j x_ij <= 1             for every request i    (dual u_i >= 0)
                sum_i x_ij <= capacity[j]   for every provider j   (dual p_j >= 0)
                x_ij in {0, 1}, x_ij = 0 unless (i, j) is a candidate pair

Certificate: for *any* prices ``p >= 0`` the dual objective
``sum_i max(0, max_j g_ij - p_j) + sum_j capacity[j] p_j`` bounds the optimum from
above, so ``bound - objective`` is a proven optimality gap, whatever produced ``p``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from time import perf_counter

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from matching._lp import solve_lp
from matching.errors import Infeasible, InvalidProblem

__all__ = ["SolveResult", "dual_bound", "solve_assignment"]

Pairs = Iterable[tuple[int, int]] | ArrayLike


@dataclass(frozen=True)
class SolveResult:
    """Outcome of :func:`solve_assignment`.

    Attributes
    ----------
    provider_of : ndarray of int64, shape (n_requests,)
        Provider column chosen for each request, or -1 when the request is unmatched.
    objective : float
        Total gain of the chosen pairs (pinned pairs included, at their score or 0).
    bound : float
        Proven upper bound on the optimum (dual objective of the final prices).
    gap : float
        ``(bound - objective) / max(1, |bound|)``; ~0 (<= 1e-9) when proven optimal.
    method : str
        Which engine produced the answer: ``"auction"`` or ``"lp"`` (HiGHS fallback).
    seconds : float
        Wall time of the whole call.
    """

    provider_of: NDArray[np.int64]
    objective: float
    bound: float
    gap: float
    method: str = "lp"
    seconds: float = 0.0


def solve_assignment(
    scores: sp.sparray | sp.spmatrix,
    capacity: ArrayLike,
    *,
    pinned: Pairs = (),
    forbidden: Pairs = (),
) -> SolveResult:
    """Maximise the total gain of a capacitated request -> provider assignment.

    Parameters
    ----------
    scores : scipy sparse array or matrix, shape (n_requests, n_providers)
        Explicit entries are the candidate pairs; their values are gains, finite and > 0.
        Any sparse format; duplicates are rejected rather than summed.
    capacity : array_like of int, shape (n_providers,)
        Maximum number of requests each provider takes, >= 0.
    pinned : iterable of (request, provider) pairs
        Pairs forced into the solution. They consume capacity; a pinned pair need not be
        a candidate (its gain is then 0).
    forbidden : iterable of (request, provider) pairs
        Pairs never used.

    Returns
    -------
    SolveResult

    Raises
    ------
    InvalidProblem
        Malformed input: not sparse, wrong shape, non-positive / NaN / infinite gains,
        duplicate entries, negative or non-integer capacity, pair index out of range.
    Infeasible
        Two different pins on one request, a pin that is also forbidden, or more pins on a
        provider than its capacity.
    """
    start = perf_counter()
    csr = _as_scores(scores)
    cap = _as_capacity(capacity, csr.shape[1])
    pins = _as_pairs(pinned, csr.shape, "pinned")
    bans = _as_pairs(forbidden, csr.shape, "forbidden")
    pins = _check_pins(pins, bans, cap, csr.shape[1])
    free = _drop_entries(csr, bans, pins[:, 0])
    residual = cap - np.bincount(pins[:, 1], minlength=csr.shape[1])
    provider_of, prices = solve_lp(free, residual)
    provider_of[pins[:, 0]] = pins[:, 1]
    pin_gain = float(_lookup(csr, pins[:, 0], pins[:, 1]).sum())
    objective = float(_chosen_gains(csr, provider_of).sum())
    bound = pin_gain + dual_bound(free, residual, prices)
    gap = max(bound - objective, 0.0) / max(1.0, abs(bound))
    return SolveResult(provider_of, objective, bound, gap, "lp", perf_counter() - start)


def dual_bound(
    csr: sp.csr_array, capacity: NDArray[np.int64], prices: NDArray[np.float64]
) -> float:
    """Dual objective ``sum_i max(0, max_j g_ij - p_j) + capacity . p`` for ``p >= 0``.

    Weak duality makes this an upper bound on the optimum for any non-negative prices;
    the request duals ``u_i`` are the smallest feasible ones given ``p``.
    """
    p = np.maximum(prices, 0.0)
    net = csr.data - p[csr.indices]
    nonempty = np.flatnonzero(np.diff(csr.indptr))
    u = np.maximum.reduceat(net, csr.indptr[nonempty]) if net.size else net
    return float(np.maximum(u, 0.0).sum() + capacity.astype(np.float64) @ p)


def _as_scores(scores: sp.sparray | sp.spmatrix) -> sp.csr_array:
    """Validate the score matrix once and return canonical float64 CSR (sorted, no dups)."""
    if not sp.issparse(scores):
        raise InvalidProblem("scores must be a scipy.sparse array or matrix")
    if scores.ndim != 2:
        raise InvalidProblem(f"scores must be 2-D, got shape {scores.shape}")
    if scores.dtype.kind not in "iuf":
        raise InvalidProblem(f"scores must be real numbers, got dtype {scores.dtype}")
    coo = sp.coo_array(scores)
    keys = coo.row.astype(np.int64) * coo.shape[1] + coo.col
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    if keys.size > 1 and np.any(keys[1:] == keys[:-1]):
        raise InvalidProblem("scores has duplicate entries for the same (request, provider)")
    data = coo.data[order].astype(np.float64)
    if not np.all(np.isfinite(data)) or np.any(data <= 0):
        raise InvalidProblem("every explicit score must be finite and > 0")
    n_req, n_prov = coo.shape
    indptr = np.searchsorted(keys, np.arange(n_req + 1, dtype=np.int64) * n_prov)
    indices = keys % max(n_prov, 1)
    return sp.csr_array((data, indices, indptr), shape=(n_req, n_prov))


def _as_capacity(capacity: ArrayLike, n_providers: int) -> NDArray[np.int64]:
    cap = np.asarray(capacity)
    if cap.shape != (n_providers,):
        raise InvalidProblem(f"capacity must have shape ({n_providers},), got {cap.shape}")
    if cap.size and cap.dtype.kind not in "iu":
        raise InvalidProblem(f"capacity must be integers, got dtype {cap.dtype}")
    if np.any(cap < 0):
        raise InvalidProblem("capacity must be >= 0")
    return cap.astype(np.int64)


def _as_pairs(pairs: Pairs, shape: tuple[int, int], name: str) -> NDArray[np.int64]:
    """Return an (n, 2) int64 array of distinct pairs, checked against ``shape``."""
    arr = np.asarray(list(pairs) if not isinstance(pairs, np.ndarray) else pairs)
    if arr.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.dtype.kind not in "iu":
        raise InvalidProblem(f"{name} must be integer (request, provider) pairs")
    arr = arr.astype(np.int64)
    inside = (arr >= 0) & (arr < np.asarray(shape))
    if not np.all(inside):
        bad = arr[~inside.all(axis=1)][0]
        raise InvalidProblem(f"{name} pair {tuple(bad.tolist())} is outside shape {shape}")
    return np.unique(arr, axis=0)


def _check_pins(
    pins: NDArray[np.int64], bans: NDArray[np.int64], cap: NDArray[np.int64], n_prov: int
) -> NDArray[np.int64]:
    """Raise :class:`Infeasible` for contradictory pins; return the pins unchanged."""
    req, counts = np.unique(pins[:, 0], return_counts=True)
    if np.any(counts > 1):
        i = int(req[counts > 1][0])
        provs = pins[pins[:, 0] == i, 1].tolist()
        raise Infeasible(f"request {i} is pinned to several providers {provs}")
    if bans.size and pins.size:
        clash = np.isin(pins[:, 0] * n_prov + pins[:, 1], bans[:, 0] * n_prov + bans[:, 1])
        if np.any(clash):
            i, j = pins[clash][0].tolist()
            raise Infeasible(f"pair (request {i}, provider {j}) is both pinned and forbidden")
    load = np.bincount(pins[:, 1], minlength=n_prov)
    over = np.flatnonzero(load > cap)
    if over.size:
        j = int(over[0])
        raise Infeasible(f"provider {j} has {load[j]} pins but capacity {cap[j]}")
    return pins


def _drop_entries(
    csr: sp.csr_array, bans: NDArray[np.int64], pinned_rows: NDArray[np.int64]
) -> sp.csr_array:
    """Copy of ``csr`` without forbidden pairs and without the rows of pinned requests."""
    n_req, n_prov = csr.shape
    rows = np.repeat(np.arange(n_req, dtype=np.int64), np.diff(csr.indptr))
    keep = np.ones(csr.nnz, dtype=bool)
    if bans.size:
        keep &= ~np.isin(rows * n_prov + csr.indices, bans[:, 0] * n_prov + bans[:, 1])
    if pinned_rows.size:
        keep &= ~np.isin(rows, pinned_rows)
    if keep.all():
        return csr
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=n_req))])
    return sp.csr_array((csr.data[keep], csr.indices[keep], indptr), shape=csr.shape)


def _lookup(
    csr: sp.csr_array, rows: NDArray[np.int64], cols: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Gains of pairs ``(rows[k], cols[k])``; 0 where the pair is not an explicit entry."""
    out = np.zeros(rows.size)
    if rows.size == 0 or csr.nnz == 0:
        return out
    n_prov = csr.shape[1]
    entry_rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
    keys = entry_rows * n_prov + csr.indices
    want = rows * n_prov + cols
    pos = np.minimum(np.searchsorted(keys, want), keys.size - 1)
    hit = keys[pos] == want
    out[hit] = csr.data[pos[hit]]
    return out


def _chosen_gains(csr: sp.csr_array, provider_of: NDArray[np.int64]) -> NDArray[np.float64]:
    matched = np.flatnonzero(provider_of >= 0)
    return _lookup(csr, matched, provider_of[matched])
