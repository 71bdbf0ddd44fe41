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

from matching.solving import _market as mkt
from matching.solving._market import DUMMY, Bools, Floats, Int32s, Ints, Market

__all__ = ["update_prices"]


def update_prices(mk: Market, eps: float, stuck: Ints | None = None) -> int:
    """Raise prices by the distances above; returns the candidate pairs scanned.

    With ``stuck`` (unassigned persons, ascending; every holder paying its entry price,
    see :func:`matching.solving._market.equalize`) they are then moved along the shortest paths
    themselves (:func:`_augment`) instead of being left to find them bid by bid.

    The reversed graph is built straight from the cached CSC of the gains (column ``l``
    lists the persons ``k`` that could move to ``l``, i.e. the arcs ``l <- home(k)``), so
    no sort is needed; arcs that do not exist (``k`` holds nothing, or holds ``l``)
    become self-loops of length 0, which no shortest path uses.
    """
    csc = mk.columns()
    n, m = mk.csr.shape
    everyone = np.arange(n, dtype=np.int64)
    held = mk.owner >= 0
    home = np.where(held, mkt.home(mk, everyone), -1).astype(np.int32)
    pi = np.where(held, mkt.profit(mk, everyone), 0.0)
    col = mk.column_of_entry()
    k = csc.indices
    to_sink = np.full(m, np.inf)  # arcs j -> T: a holder of j takes its dummy, or j has room
    np.minimum.at(to_sink, home[held], np.maximum(pi[held] + eps, 0.0))
    room = np.bincount(mk.slot_prov[mk.slot_holder >= 0], minlength=m) < mk.cap
    to_sink[room] = 0.0
    sink_arcs = np.flatnonzero(np.isfinite(to_sink))
    # the graph's arrays are filled in place (int32 heads, no concatenation): at 200k x 30
    # pairs the temporaries of the plain expressions peaked at +360 MB
    nnz = k.size
    data = np.empty(nnz + sink_arcs.size)
    targets = np.empty(nnz + sink_arcs.size, dtype=np.int32)
    heads, length = targets[:nnz], data[:nnz]
    np.take(home, k, out=heads, mode="clip")  # "raise" buffers ``out``
    real = held[k]
    real &= heads != col
    np.take(mk.entry, col, out=length, mode="clip")
    np.subtract(csc.data, length, out=length)  # g - p_l, then pi - (g - p_l) + eps
    np.subtract(np.take(pi, k), length, out=length)
    length += eps
    np.maximum(length, 0.0, out=length)
    np.logical_not(real, out=real)
    length[real], heads[real] = 0.0, col[real]
    np.logical_not(real, out=real)
    data[nnz:], targets[nnz:] = to_sink[sink_arcs], sink_arcs
    graph = sp.csr_array(
        (data, targets, np.concatenate([csc.indptr, [nnz + sink_arcs.size]])), shape=(m + 1, m + 1)
    )
    # one source, given as a list: scipy-stubs types only sequences of sources
    dists, preds = dijkstra(graph, directed=True, indices=[m], return_predecessors=True)
    dist, pred = dists[0], preds[0]
    raise_by = np.where(np.isfinite(dist[:m]), dist[:m], 0.0)
    raised = np.flatnonzero(raise_by > 0)
    if raised.size:
        slots = mkt.slots_of(mk, raised)
        mk.slot_price[slots] += raise_by[mk.slot_prov[slots]]
        mkt.refresh_entry(mk, raised)
    if stuck is not None and stuck.size:
        tree = real & (pred[heads] == col)  # the arc heads[e] -> col[e] is a tree arc
        _augment(mk, stuck, pred[:m], _movers(tree, heads, length, k, csc.data, m), room)
    return int(k.size)


def _movers(
    tree: Bools, heads: Int32s, length: Floats, person: Int32s | Ints, gain: Floats, m: int
) -> tuple[Ints, Floats]:
    """Per provider ``j``: the holder that moves on along ``j``'s tree arc, and its gain there."""
    e = np.flatnonzero(tree)
    e = e[np.lexsort((length[e], heads[e]))]
    first = e[np.concatenate([[True], heads[e][1:] != heads[e][:-1]])] if e.size else e
    mover, mover_gain = np.full(m, -1, dtype=np.int64), np.zeros(m)
    mover[heads[first]], mover_gain[heads[first]] = person[first], gain[first]
    return mover, mover_gain


def _augment(
    mk: Market, stuck: Ints, pred: Int32s, movers: tuple[Ints, Floats], room: Bools
) -> None:
    """Place ``stuck`` persons along vertex-disjoint shortest paths to free capacity.

    After the update every tree arc has length 0: a holder moving along one gains
    exactly eps over its old profit, so eps-CS holds for everyone moved, and prices do
    not change (each mover takes the slot its successor left, at the same entry price).
    A person whose path crosses one already used in this pass keeps bidding instead.
    """
    best, best_gain, beta, _ = mkt.evaluate(mk, stuck)
    nxt, (mover, mover_gain) = pred.tolist(), movers
    m = pred.size
    used: set[int] = set()
    for i, j0, g0, b in zip(stuck.tolist(), best.tolist(), best_gain.tolist(), beta.tolist(),
                            strict=True):  # fmt: skip
        if b <= 0.0:
            continue
        path = [j0]
        while 0 <= nxt[path[-1]] < m and len(path) <= m:
            path.append(nxt[path[-1]])
        if nxt[path[-1]] != m or used.intersection(path) or np.any(mover[path[:-1]] < 0):
            continue
        used.update(path)
        _shift(mk, i, g0, path, mover, mover_gain, bool(room[path[-1]]))


def _shift(
    mk: Market, person: int, gain: float, path: list[int], mover: Ints, mover_gain: Floats,
    room: bool,
) -> None:  # fmt: skip
    """Apply one path: each mover steps one provider on, ``person`` takes the first slot."""
    end = path[-1]
    lo, hi = int(mk.off[end]), int(mk.off[end + 1])
    if room:
        vacated = lo + int(np.flatnonzero(mk.slot_holder[lo:hi] < 0)[-1])
    else:  # the holder of ``end`` with the least profit takes its dummy
        holders = mk.slot_holder[lo:hi]
        vacated = lo + int(np.argmin(mk.own_gain[holders] - mk.slot_price[lo:hi]))
        leaver = int(mk.slot_holder[vacated])
        mk.owner[leaver], mk.own_gain[leaver] = DUMMY, 0.0
    for j in reversed(path[:-1]):
        k = int(mover[j])
        old = int(mk.owner[k])
        mk.slot_holder[vacated], mk.owner[k], mk.own_gain[k] = k, vacated, mover_gain[j]
        vacated = old
    mk.slot_holder[vacated], mk.owner[person], mk.own_gain[person] = person, vacated, gain
