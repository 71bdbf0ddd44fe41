"""Hand small stuck components from the auction to the exact solver.

Connected components of the candidate graph are independent subproblems. When only a
few persons keep bidding round after round, they are chasing an augmenting path across a
bottleneck inside a small component, one hop per Jacobi round. :func:`freeze_stuck`
solves such components exactly (:func:`matching.solving._exact.solve_exact`) and takes them out
of the market: their persons become ``FROZEN``, their providers' slots free at price 0,
and the exact assignment and duals are kept aside for the final answer. A component too
big for the exact solver stays in the market, where global price updates
(:mod:`matching.solving._price_update`) shorten the tail.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from matching.solving import _market as mkt
from matching.solving._exact import ExactFailed, solve_exact
from matching.solving._market import FROZEN, Int32s, Ints, Market

EXACT_MAX_PERSONS = 5000  # largest component handed to the exact solver
TAIL_START = 512  # rounds of one stage before looking for a stuck tail
TAIL_EVERY = 512  # rounds between two later checks
TAIL_FRACTION = 50  # a tail is at most n / TAIL_FRACTION active persons (or 32)


def is_tail(mk: Market, rounds: int, n_active: int) -> bool:
    """Whether this round is a check point of a long stage with few persons active.

    Wide stages are left alone: the Jacobi rounds are efficient there, and a price
    war among many persons is the eps schedule's business.
    """
    limit = max(32, mk.owner.size // TAIL_FRACTION)
    check = rounds >= TAIL_START and (rounds - TAIL_START) % TAIL_EVERY == 0
    return check and 0 < n_active <= limit


def freeze_stuck(mk: Market, nodes: Ints) -> int:
    """Solve exactly and freeze the small components containing ``nodes``.

    ``nodes`` index persons as ``i`` and providers as ``n + j``. Returns the number of
    persons frozen.
    """
    n = mk.owner.size
    labels = _components(mk)
    size = np.bincount(labels[:n], minlength=int(labels.max()) + 1)
    comps = np.unique(labels[nodes])
    comps = comps[size[comps] <= EXACT_MAX_PERSONS]
    if comps.size == 0:
        return 0
    frozen = 0
    for comp in comps.tolist():  # one at a time: the exact solvers grow faster than size
        frozen += _freeze_component(mk, np.flatnonzero(labels == comp))
    return frozen


def _freeze_component(mk: Market, nodes: Ints) -> int:
    """Solve one component (``nodes`` in label space) exactly and freeze it."""
    n = mk.owner.size
    persons, providers = nodes[nodes < n], nodes[nodes >= n] - n
    sub = sp.csr_array(mk.csr[persons][:, providers])
    sub.sort_indices()
    try:
        chosen, duals = solve_exact(sub, mk.cap[providers])
    except ExactFailed:  # too big for LAPJVsp: leave it to the auction and price updates
        return 0
    if mk.exact_of is None or mk.exact_price is None:
        mk.exact_of = np.full(n, -1, dtype=np.int64)
        mk.exact_price = np.zeros(mk.entry.size - 1)
    hit = chosen >= 0
    mk.exact_of[persons] = -1
    mk.exact_of[persons[hit]] = providers[chosen[hit]]
    mk.exact_price[providers] = duals
    slots = mkt.slots_of(mk, providers)
    mk.slot_holder[slots], mk.slot_price[slots] = -1, 0.0
    mkt.refresh_entry(mk, providers[mk.cap[providers] > 0])
    mk.owner[persons], mk.own_gain[persons] = FROZEN, 0.0
    return int(persons.size)


def _components(mk: Market) -> Int32s:
    """Component label of every person (``i``) and provider (``n + j``), cached."""
    if mk.labels is None:
        n, m = mk.csr.shape
        indptr = np.concatenate([mk.csr.indptr, np.full(m, mk.csr.nnz)])
        graph = sp.csr_array(
            (np.ones(mk.csr.nnz), mk.csr.indices + n, indptr), shape=(n + m, n + m)
        )
        mk.labels = connected_components(graph, directed=True, connection="weak")[1]
    return mk.labels
