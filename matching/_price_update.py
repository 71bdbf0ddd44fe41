"""Global price update: raise every provider's price by its distance to free capacity.

Why: when persons are near-tied (equal or few distinct gains) or must travel a long
augmenting path, forward bids raise prices by about eps per bid and per hop, a *price
war* whose length is the price gap divided by eps. Goldberg and Kennedy's cost-scaling
assignment code (CSA) answers this with global price updates: one shortest-path
computation sets every price to where the war would eventually push it. Here that
shortest-path computation is scipy's compiled Dijkstra, so it costs one pass over the
candidate pairs.

Graph (providers plus a sink ``T``), with ``pi_k`` the profit of holder ``k``:

* ``j -> l`` for each holder ``k`` of ``j`` and each other candidate ``l`` of ``k``,
  length ``pi_k - (g_kl - p_l) + eps`` (``>= 0`` by eps-CS): ``k`` moves on to ``l``;
* ``j -> T`` of length ``pi_k + eps`` for each holder ``k`` of ``j``: ``k`` takes its dummy;
* ``j -> T`` of length 0 when ``j`` has a free slot.

With ``d`` the distances to ``T``, raising every slot price of ``j`` by ``d_j`` keeps
eps-CS: for a holder ``k`` of ``j`` and a candidate ``l``, ``pi_k - d_j >= g_kl - p_l - d_l
- eps`` is exactly the triangle inequality ``d_j <= length(j -> l) + d_l``, and the dummy
arc gives ``pi_k - d_j >= -eps``. Free capacity keeps ``d = 0``, so free slots stay at
price 0. Prices only rise, so every ``gout`` bound stays valid; the certificate is
computed independently at the end, whatever the prices.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from matching import _market as mkt
from matching._market import Market

__all__ = ["update_prices"]


def update_prices(mk: Market, eps: float) -> int:
    """Raise prices by the distances above; returns the candidate pairs scanned.

    The reversed graph is built straight from the cached CSC of the gains (column ``l``
    lists the persons ``k`` that could move to ``l``, i.e. the arcs ``l <- home(k)``), so
    no sort is needed; arcs that do not exist (``k`` holds nothing, or holds ``l``)
    become self-loops of length 0, which no shortest path uses.
    """
    csc = mk.columns()
    n, m = mk.csr.shape
    everyone = np.arange(n, dtype=np.int64)
    held = mk.owner >= 0
    home = np.where(held, mkt.home(mk, everyone), -1)
    pi = np.where(held, mkt.profit(mk, everyone), 0.0)
    col = mk.column_of_entry()
    k = csc.indices
    real = held[k] & (home[k] != col)
    length = pi[k] - (csc.data - mk.entry[col]) + eps
    heads = np.where(real, home[k], col)
    length = np.where(real, np.maximum(length, 0.0), 0.0)
    to_sink = np.full(m, np.inf)  # arcs j -> T: a holder of j takes its dummy, or j has room
    np.minimum.at(to_sink, home[held], np.maximum(pi[held] + eps, 0.0))
    full = mk.slot_holder[np.maximum(mk.off[1:] - 1, 0)] >= 0
    to_sink[~full & (mk.cap > 0)] = 0.0
    sink_arcs = np.flatnonzero(np.isfinite(to_sink))
    graph = sp.csr_array(
        (
            np.concatenate([length, to_sink[sink_arcs]]),
            np.concatenate([heads, sink_arcs]),
            np.concatenate([csc.indptr, [csc.indptr[-1] + sink_arcs.size]]),
        ),
        shape=(m + 1, m + 1),
    )
    dist = dijkstra(graph, directed=True, indices=m)[:m]
    raise_by = np.where(np.isfinite(dist), dist, 0.0)
    raised = np.flatnonzero(raise_by > 0)
    if raised.size:
        slots = mkt.slots_of(mk, raised)
        mk.slot_price[slots] += raise_by[mk.slot_prov[slots]]
        mkt.refresh_entry(mk, raised)
    return int(k.size)
