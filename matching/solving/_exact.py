"""Exact solver for small components: scipy's LAPJVsp, then the least optimal duals.

1. Primal: :func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching` (compiled
   LAPJVsp) on the slot-expanded graph, where every request also owns a private dummy
   column, so a full matching always exists and the Hopcroft-Karp feasibility check
   stays at depth one (away from scipy issue #26147).
2. Duals: given an optimal assignment ``mu``, the provider prices ``p`` are optimal iff

   * ``p_j >= g_ij``                        for every unmatched request ``i``,
   * ``p_j >= p_k + g_ij - g_ik``           for request ``i`` matched to ``k != j``,
   * ``p_j >= 0``,

   plus upper bounds (``p_k <= g_ik``, ``p_j = 0`` when ``j`` is not full) that the
   *least* solution of the lower bounds meets whenever some solution does. That least
   solution is a longest-path fixed point, found by vectorised Bellman-Ford rounds from
   ``p = base``; they stop as soon as nothing changes (a handful of rounds in practice).
   scipy's own ``bellman_ford`` always makes |V| passes, far too slow here.

Both steps raise :class:`ExactFailed` when they cannot deliver (too large, no fixed point
within the round cap), and the caller falls back to HiGHS.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import min_weight_full_bipartite_matching as lapjvsp

__all__ = ["ExactFailed", "solve_exact"]

MAX_SLOT_EDGES = 250_000  # slot-expanded edges above which LAPJVsp is not tried
MAX_DUAL_ROUNDS = 1000  # Bellman-Ford rounds before giving up on the duals
_CREEP = 1e-13  # relative increase below which the duals count as a fixed point
Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


class ExactFailed(RuntimeError):
    """The exact path gave up; use another exact method."""


def solve_exact(
    csr: sp.csr_array, capacity: Ints, max_edges: int = MAX_SLOT_EDGES
) -> tuple[Ints, Floats]:
    """Optimal assignment and optimal provider duals of a small problem.

    Parameters
    ----------
    csr : csr_array, shape (n, m)
        Gains > 0, canonical.
    capacity : ndarray of int64, shape (m,)
        Clipped to each provider's number of candidates.
    max_edges : int
        Slot-expanded edges above which it raises :class:`ExactFailed` untried.

    Returns
    -------
    provider_of : ndarray of int64, shape (n,), -1 when unmatched
    prices : ndarray of float64, shape (m,), optimal duals ``p_j >= 0``
    """
    if csr.nnz == 0:
        return np.full(csr.shape[0], -1, dtype=np.int64), np.zeros(csr.shape[1])
    provider_of = _primal(csr, capacity, max_edges)
    return provider_of, _least_duals(csr, provider_of)


def _primal(csr: sp.csr_array, capacity: Ints, max_edges: int) -> Ints:
    """LAPJVsp on requests x (slots + dummies); costs ``top - g`` (dummy: ``top``) > 0."""
    n, m = csr.shape
    per_entry = capacity[csr.indices]  # each candidate pair becomes c_j slot edges
    if int(per_entry.sum()) > max_edges:
        raise ExactFailed("slot expansion too large")
    offset = np.concatenate([[0], np.cumsum(capacity)])
    n_slots = int(offset[-1])
    if n_slots == 0:
        return np.full(n, -1, dtype=np.int64)
    rows = np.repeat(np.repeat(np.arange(n), np.diff(csr.indptr)), per_entry)
    within = np.arange(rows.size) - np.repeat(np.cumsum(per_entry) - per_entry, per_entry)
    slot = np.repeat(offset[csr.indices], per_entry) + within
    top = float(csr.data.max()) + 1.0
    graph = sp.csr_array(
        (
            np.concatenate([top - np.repeat(csr.data, per_entry), np.full(n, top)]),
            (np.concatenate([rows, np.arange(n)]), np.concatenate([slot, n_slots + np.arange(n)])),
        ),
        shape=(n, n_slots + n),
    )
    _, col = lapjvsp(graph)
    slot_prov = np.repeat(np.arange(m), capacity)
    return np.where(col < n_slots, slot_prov[np.minimum(col, n_slots - 1)], -1).astype(np.int64)


def _least_duals(csr: sp.csr_array, provider_of: Ints) -> Floats:
    """Least prices meeting the lower bounds of the module docstring (fixed point)."""
    n, m = csr.shape
    rows = np.repeat(np.arange(n), np.diff(csr.indptr))
    own = provider_of[rows]
    mine = own == csr.indices
    own_gain = np.zeros(n)
    own_gain[rows[mine]] = csr.data[mine]
    base = np.zeros(m)
    free = own < 0
    np.maximum.at(base, csr.indices[free], csr.data[free])
    other = (own >= 0) & (own != csr.indices)
    order = np.argsort(csr.indices[other], kind="stable")
    head = csr.indices[other][order]
    tail = own[other][order]
    weight = (csr.data[other] - own_gain[rows[other]])[order]
    if head.size == 0:
        return base
    starts = np.flatnonzero(np.concatenate([[True], head[1:] != head[:-1]]))
    targets = head[starts]
    prices = base
    # LAPJVsp's optimum is exact up to rounding, so a cycle may gain an ulp per round
    # forever; increases that small end the rounds (the certificate is recomputed anyway)
    creep = _CREEP * float(csr.data.max())
    for _ in range(min(n + m + 1, MAX_DUAL_ROUNDS)):
        bound = np.maximum.reduceat(prices[tail] + weight, starts)
        new = prices.copy()
        new[targets] = np.maximum(base[targets], bound)
        if np.all(new - prices <= creep):
            return new
        prices = new
    raise ExactFailed("no dual fixed point within the round cap")
