"""Exact capacitated assignment of requests to providers, with an optimality certificate.

Problem (an integral LP because its constraint matrix is totally unimodular)::

    maximise    sum_ij g_ij x_ij
    subject to  sum_j x_ij <= 1             for every request i    (dual u_i >= 0)
                sum_i x_ij <= capacity[j]   for every provider j   (dual p_j >= 0)
                x_ij in {0, 1}, x_ij = 0 unless (i, j) is a candidate pair

Certificate: for *any* prices ``p >= 0`` the dual objective
``sum_i max(0, max_j g_ij - p_j) + sum_j capacity[j] p_j`` bounds the optimum from
above, so ``bound - objective`` is a proven optimality gap, whatever produced ``p``.

Algorithm (see the private modules for the details and the reasons):

1. validate once, apply pins (they consume capacity) and forbidden pairs, drop
   providers with no capacity left and clip capacity to each provider's candidates;
2. small problems where it is measured to win (:func:`_exact_first`: the product's
   region runs, and twin columns such as the fairness option's slot columns) go first
   to :mod:`matching.solving._exact`, one compiled LAPJVsp call plus the least optimal
   duals; its answer is kept only if it certifies;
3. otherwise :mod:`matching.solving._auction`: a numpy-vectorised forward/reverse auction (Bertsekas)
   with providers split into priced slots, run at ``eps = tol / n`` and eps-scaled
   only when a price war shows up, with global price updates (shortest paths to free
   capacity, :mod:`matching.solving._price_update`) against wars and long tails. Small connected
   components where it stalls are handed to :mod:`matching.solving._exact` (scipy's LAPJVsp
   plus Bellman-Ford duals);
4. the certificate is recomputed here from the final prices, and the assignment is
   checked against every capacity; if the auction ran out of budget or did not certify
   ``GAP_TOL``, HiGHS (:mod:`matching.solving._lp`) solves the LP.

Every step has a work budget or a size cap, so every call ends in bounded time; LAPJVsp
and HiGHS are polynomial.

Tie-breaking is deterministic, with no randomness: among equal values a person bids
for the lower provider index, among equal bids the current holder keeps its slot and
then the lower request index wins. The same input gives the same output; permuting the
rows gives the same objective, and the same pairs whenever the optimum is unique.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from matching.errors import Infeasible, InvalidProblem
from matching.solving._auction import auction
from matching.solving._exact import ExactFailed, solve_exact
from matching.solving._lp import solve_lp
from matching.solving.certificate import dual_bound

__all__ = ["GAP_TOL", "SolveResult", "dual_bound", "solve_assignment"]

GAP_TOL = 1e-10
"""Certified relative gap: ``bound - objective <= GAP_TOL * sum_i max_j g_ij``."""
_WORK_PER_REQUEST = 1000  # auction budget (evaluations per request) before HiGHS
_EXACT_FIRST_REQUESTS = 5_000  # LAPJVsp may go first up to this many requests ...
_EXACT_FIRST_EDGES = 500_000  # ... and slot-expanded edges, when columns are twins ...
_TWIN_SHARE = 0.25  # ... (at least this share of them) ...
_SMALL_REQUESTS, _SMALL_EDGES = 2_000, 200_000  # ... or the problem is this small

Pairs = Iterable[tuple[int, int]] | NDArray[np.integer[Any]]
Scores = (
    sp.csr_array | sp.csc_array | sp.coo_array | sp.bsr_array | sp.dia_array | sp.dok_array
    | sp.lil_array | sp.csr_matrix | sp.csc_matrix | sp.coo_matrix | sp.bsr_matrix
    | sp.dia_matrix | sp.dok_matrix | sp.lil_matrix
)  # fmt: skip
"""Any scipy.sparse array or matrix: every format, spelt out because scipy-stubs types
their shared base (``_spbase``) only privately and ``sparray | spmatrix`` has no methods."""


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
        Which engine produced the answer: ``"exact"`` (small problems, LAPJVsp),
        ``"auction"`` or ``"lp"`` (HiGHS fallback).
    seconds : float
        Wall time of the whole call.
    prices : ndarray of float64, shape (n_providers,)
        The certificate's provider duals ``p_j >= 0``: with ``u_i = max(0, max_j g_ij -
        p_j)`` over the open (unpinned, not forbidden) pairs, ``sum u + (capacity - pins)
        . p`` is ``bound`` minus the pinned gains. ``p_j`` is what one more slot of ``j``
        would be worth at most (0 when ``j`` has room to spare); with ``method ==
        "exact"`` and no pins on ``j``, exactly what one more slot adds to the optimum.
    """

    provider_of: NDArray[np.int64]
    objective: float
    bound: float
    gap: float
    method: str = "lp"
    seconds: float = 0.0
    prices: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))


def solve_assignment(
    scores: Scores,
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
    residual = cap - np.bincount(pins[:, 1], minlength=csr.shape[1])
    free = _drop_entries(csr, bans, pins[:, 0], residual)
    # same feasible set, tighter certificate: nobody takes more requests than candidates
    clipped = np.minimum(residual, np.bincount(free.indices, minlength=csr.shape[1]))
    provider_of, objective, bound, method, prices = _solve_free(free, clipped)
    # a clipped provider with a price is full with every candidate it has: price 0 keeps
    # the dual feasible and the bound (about) unchanged, and makes ``prices`` the duals
    # of the real capacity; the bound is recomputed from them, so it stays a proof
    over = (clipped < residual) & (prices > 0)
    if np.any(over):
        prices[over] = 0.0
        bound = dual_bound(free, residual, prices)
    # full providers (pins) are out of the open problem; pricing them at their best gain
    # makes ``prices`` a certificate for the whole problem at no cost (capacity 0 x price)
    full = np.flatnonzero(residual == 0)
    if full.size:
        best = np.zeros(csr.shape[1])
        np.maximum.at(best, csr.indices, csr.data)
        prices[full] = best[full]
    provider_of[pins[:, 0]] = pins[:, 1]
    pin_gain = float(_lookup(csr, pins[:, 0], pins[:, 1]).sum())
    objective, bound = objective + pin_gain, bound + pin_gain
    gap = max(bound - objective, 0.0) / max(1.0, abs(bound))
    seconds = perf_counter() - start
    return SolveResult(provider_of, objective, bound, gap, method, seconds, prices)


def _solve_free(
    csr: sp.csr_array, capacity: NDArray[np.int64]
) -> tuple[NDArray[np.int64], float, float, str, NDArray[np.float64]]:
    """Auction first; HiGHS when the auction runs out of budget or fails to certify.

    Returns the assignment, its objective, the dual bound, the method and the prices
    (``p >= 0``, one per provider) the bound was computed from. The auction's
    answer is accepted only if the certificate recomputed here from its prices
    (independently of the auction's bookkeeping) closes the gap to ``tol``.
    """
    n_req = csr.shape[0]
    if csr.nnz == 0:
        return np.full(n_req, -1, dtype=np.int64), 0.0, 0.0, "auction", np.zeros(csr.shape[1])
    nonempty = np.flatnonzero(np.diff(csr.indptr))
    tol = GAP_TOL * max(1.0, float(np.maximum.reduceat(csr.data, csr.indptr[nonempty]).sum()))
    if _exact_first(csr, capacity):
        exact = _try_exact(csr, capacity, tol)
        if exact is not None:
            return exact
    out = auction(csr, capacity, tol=tol, max_work=_WORK_PER_REQUEST * n_req + csr.nnz)
    if out.finished and _feasible(csr, capacity, out.provider_of):
        objective = float(_chosen_gains(csr, out.provider_of).sum())
        prices = np.maximum(out.prices, 0.0)
        bound = dual_bound(csr, capacity, prices)
        if bound - objective <= tol:
            return out.provider_of, objective, bound, "auction", prices
    provider_of, prices = solve_lp(csr, capacity)
    objective = float(_chosen_gains(csr, provider_of).sum())
    prices = np.maximum(prices, 0.0)
    return provider_of, objective, dual_bound(csr, capacity, prices), "lp", prices


def _as_scores(scores: Scores) -> sp.csr_array:
    """Validate the score matrix once; return canonical float64 CSR (sorted, no dups).

    Conversions that would sum duplicate entries (COO) are checked first: duplicates
    are an encoding error, not something to add up silently.
    """
    if not isinstance(scores, sp.sparray | sp.spmatrix):  # what issparse() checks, but typed
        raise InvalidProblem("scores must be a scipy.sparse array or matrix")
    if scores.ndim != 2:
        raise InvalidProblem(f"scores must be 2-D, got shape {scores.shape}")
    if scores.dtype.kind not in "iuf":
        raise InvalidProblem(f"scores must be real numbers, got dtype {scores.dtype}")
    if isinstance(scores, sp.coo_array | sp.coo_matrix) and not scores.has_canonical_format:
        keys = np.sort(scores.row.astype(np.int64) * scores.shape[1] + scores.col)
        if np.any(keys[1:] == keys[:-1]):
            raise InvalidProblem("scores has duplicate entries for one (request, provider)")
    csr = sp.csr_array(scores).astype(np.float64, copy=False)
    if not csr.has_canonical_format:
        csr = csr.copy()  # never reorder the caller's arrays in place
        csr.sort_indices()
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
        if np.any((csr.indices[1:] == csr.indices[:-1]) & (rows[1:] == rows[:-1])):
            raise InvalidProblem("scores has duplicate entries for one (request, provider)")
        csr.has_canonical_format = True
    if not np.all(np.isfinite(csr.data)) or np.any(csr.data <= 0):
        raise InvalidProblem("every explicit score must be finite and > 0")
    return csr


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
    arr = pairs if isinstance(pairs, np.ndarray) else np.asarray(list(pairs))
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
    csr: sp.csr_array,
    bans: NDArray[np.int64],
    pinned_rows: NDArray[np.int64],
    residual: NDArray[np.int64],
) -> sp.csr_array:
    """Copy of ``csr`` keeping only usable pairs.

    Drops forbidden pairs, the rows of pinned requests and the columns of providers with
    no capacity left (their price is then 0 in the certificate).
    """
    n_req, n_prov = csr.shape
    if not bans.size and not pinned_rows.size and np.all(residual > 0):
        return csr
    rows = np.repeat(np.arange(n_req, dtype=np.int64), np.diff(csr.indptr))
    keep = residual[csr.indices] > 0
    if bans.size:
        keep &= ~np.isin(rows * n_prov + csr.indices, bans[:, 0] * n_prov + bans[:, 1])
    if pinned_rows.size:
        keep &= ~np.isin(rows, pinned_rows)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=n_req))])
    return sp.csr_array((csr.data[keep], csr.indices[keep], indptr), shape=csr.shape)


def _lookup(
    csr: sp.csr_array, rows: NDArray[np.int64], cols: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Gains of pairs ``(rows[k], cols[k])``; 0 where the pair is not an explicit entry.

    A vectorised binary search within each queried row (canonical CSR: sorted, each pair
    at most once): memory O(len(rows)), where gathering the queried rows whole took
    ~190 MB at 200k x 30 pairs.
    """
    out = np.zeros(rows.size)
    if rows.size == 0:
        return out
    lo, hi = csr.indptr[rows].astype(np.int64), csr.indptr[rows + 1].astype(np.int64)
    end = hi.copy()
    todo = np.flatnonzero(lo < hi)
    while todo.size:
        mid = (lo[todo] + hi[todo]) // 2
        right = csr.indices[mid] < cols[todo]
        lo[todo[right]] = mid[right] + 1
        hi[todo[~right]] = mid[~right]
        todo = todo[lo[todo] < hi[todo]]
    found = np.flatnonzero(lo < end)
    found = found[csr.indices[lo[found]] == cols[found]]
    out[found] = csr.data[lo[found]]
    return out


def _chosen_gains(csr: sp.csr_array, provider_of: NDArray[np.int64]) -> NDArray[np.float64]:
    matched = np.flatnonzero(provider_of >= 0)
    return _lookup(csr, matched, provider_of[matched])


def _exact_first(csr: sp.csr_array, capacity: NDArray[np.int64]) -> bool:
    """Whether LAPJVsp should be tried before the auction (measured, see the caps above).

    Small problems only (its time grows with requests x slot-expanded edges), and among
    them the shapes where it wins: twin columns (the fairness option's slot columns, same
    candidate requests, gains a factor apart), which bid against each other in the
    auction (region 35 with fairness 0.1: 2.9 s -> 0.5 s), and the smallest problems,
    where the auction's per-round overhead dominates (region 3505: 0.076 s -> 0.045 s).
    On random shapes of 5k requests the auction is 1.5-6x faster, hence no wider rule.
    """
    n_req = csr.shape[0]
    edges = int(capacity[csr.indices].sum())
    if n_req > _EXACT_FIRST_REQUESTS or edges > _EXACT_FIRST_EDGES:
        return False
    if n_req <= _SMALL_REQUESTS and edges <= _SMALL_EDGES:
        return True
    return _twin_share(csr) >= _TWIN_SHARE


def _twin_share(csr: sp.csr_array) -> float:
    """Share of the non-empty columns whose set of candidate requests another column has.

    Hashes each column's row set (sum of a multiplicative hash of its rows, plus its
    length); a collision only changes which exact method runs, never the answer.
    """
    csc = csr.tocsc()
    counts = np.diff(csc.indptr)
    nonempty = np.flatnonzero(counts)
    if nonempty.size < 2:
        return 0.0
    mixed = (csc.indices.astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    mixed ^= mixed >> np.uint64(29)
    key = np.add.reduceat(mixed, csc.indptr[nonempty]) ^ counts[nonempty].astype(np.uint64)
    _, inverse, size = np.unique(key, return_inverse=True, return_counts=True)
    return float(np.count_nonzero(size[inverse] > 1)) / nonempty.size


def _try_exact(
    csr: sp.csr_array, capacity: NDArray[np.int64], tol: float
) -> tuple[NDArray[np.int64], float, float, str, NDArray[np.float64]] | None:
    """The compiled exact path (:mod:`matching.solving._exact`) on a small problem.

    Why first: on the product's own region runs (a few thousand requests, K = 20) the
    auction spends its time in per-round overhead and, with the fairness option, in
    bidding wars between a provider's near-identical slot columns, while LAPJVsp on
    the slot-expanded graph is one compiled call (region 3505 with fairness 0.1:
    0.51 s -> 0.12 s). Its prices are the *least* optimal duals: ``p_j`` is exactly
    what one more slot of ``j`` adds to the optimum. None when it gives up or does not
    certify (then the auction runs); the certificate is recomputed here as always.
    """
    try:
        provider_of, prices = solve_exact(csr, capacity, _EXACT_FIRST_EDGES)
    except ExactFailed:
        return None
    if not _feasible(csr, capacity, provider_of):
        return None
    objective = float(_chosen_gains(csr, provider_of).sum())
    prices = np.maximum(prices, 0.0)
    bound = dual_bound(csr, capacity, prices)
    if bound - objective > tol:
        return None
    return provider_of, objective, bound, "exact", prices


def _feasible(
    csr: sp.csr_array, capacity: NDArray[np.int64], provider_of: NDArray[np.int64]
) -> bool:
    """Whether ``provider_of`` keeps every capacity and uses only candidate pairs.

    The dual bound proves the objective cannot be beaten, not that the assignment is
    allowed; this checks the primal side from the assignment alone, so the auction's
    bookkeeping is trusted for neither half of the certificate.
    """
    matched = np.flatnonzero(provider_of >= 0)
    load = np.bincount(provider_of[matched], minlength=csr.shape[1])
    if load.size > csr.shape[1] or np.any(load > capacity):
        return False
    return bool(np.all(_lookup(csr, matched, provider_of[matched]) > 0))
