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

Capped distances: for any cap ``D >= 0``, ``r = min(d, D)`` keeps the triangle inequality
(``min(d_j, D) <= length + min(d_l, D)``) and the dummy arcs (``r <= d``), so raising by
``r`` keeps eps-CS too. Arcs of length ``>= D`` then lie on no path that matters, and a
Dijkstra search limited to ``D`` over the shorter arcs alone gives every ``d <= D``
exactly (providers beyond it are raised by ``D``). Arcs no shorter than the head's own
arc to ``T`` are dropped as well (``d_j`` is at most that arc). ``D`` is twice the largest
distance the previous update found, and unbounded for the first update and after one
where the cap bit (so a weak update is never followed by another): on a dense market
(10k x 10k, K = 100, capacity 1) distances are ~1% of the gains and 2% of the pairs are
shorter, so Dijkstra, the tree and the movers run on those alone (an update 30-60 ms ->
11-18 ms; doubling the cap instead of lifting it cost three gain values with pins 4x).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from matching.solving import _market as mkt
from matching.solving._market import DUMMY, Bools, Floats, Int32s, Ints, Market

__all__ = ["update_prices"]

_REACH = 2.0  # distance cap of the next update, in units of this one's largest distance


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
    home = np.where(held, mkt.home(mk, everyone), m).astype(np.int32)  # m: holds nothing
    pi = np.where(held, mkt.profit(mk, everyone), 0.0)
    col = mk.column_of_entry()
    k = csc.indices
    to_sink = np.full(m + 1, np.inf)  # arcs j -> T: a holder of j takes its dummy, or j has room
    np.minimum.at(to_sink, home[held], np.maximum(pi[held] + eps, 0.0))
    room = np.bincount(mk.slot_prov[mk.slot_holder >= 0], minlength=m) < mk.cap
    to_sink[:m][room] = 0.0
    sink_arcs = np.flatnonzero(np.isfinite(to_sink[:m]))
    to_sink[m] = -np.inf  # persons holding nothing have no arcs: pruned below
    # in place, mode="clip" (the default "raise" buffers ``out``): at 200k x 30 pairs the
    # temporaries of the plain expressions peaked at +360 MB
    heads = np.take(home, k, mode="clip")
    length = np.take(mk.entry, col, mode="clip")
    np.subtract(csc.data, length, out=length)  # g - p_l, then pi - (g - p_l) + eps
    np.subtract(np.take(pi, k, mode="clip"), length, out=length)
    length += eps
    keep = length < np.take(to_sink, heads, mode="clip")  # see "Capped distances" above
    keep &= length < mk.reach
    keep &= heads != col
    arcs = np.flatnonzero(keep)
    del keep
    heads, length = heads[arcs], np.maximum(length[arcs], 0.0)
    tails = col[arcs]  # ascending: the CSC lists columns in order
    per_tail = np.bincount(tails, minlength=m + 1)
    per_tail[m] = sink_arcs.size
    graph = sp.csr_array(
        (
            np.concatenate([length, to_sink[sink_arcs]]),
            np.concatenate([heads, sink_arcs.astype(np.int32)]),
            np.concatenate([[0], np.cumsum(per_tail)]),
        ),
        shape=(m + 1, m + 1),
    )
    # one source, given as a list: scipy-stubs types only sequences of sources
    dists, preds = dijkstra(
        graph, directed=True, indices=[m], return_predecessors=True, limit=mk.reach
    )
    dist, pred = dists[0], preds[0]
    reached = np.isfinite(dist[:m])
    beyond = np.isfinite(mk.reach) and not np.all(reached | (mk.cap == 0))
    raise_by = np.where(reached, dist[:m], mk.reach if beyond else 0.0)
    raise_by[mk.cap == 0] = 0.0  # no slots: nothing to raise (and no entry to refresh)
    farthest = max(float(dist[:m][reached].max(initial=0.0)), eps)
    mk.reach = np.inf if beyond else _REACH * farthest  # the cap bit: none next time
    raised = np.flatnonzero(raise_by > 0)
    if raised.size:
        slots = mkt.slots_of(mk, raised)
        mk.slot_price[slots] += raise_by[mk.slot_prov[slots]]
        mkt.refresh_entry(mk, raised)
    if stuck is not None and stuck.size:
        tree = pred[heads] == tails  # the arc heads[e] -> tails[e] is a tree arc
        movers = _movers(tree, heads, length, k[arcs], csc.data[arcs], m)
        _augment(mk, stuck, pred[:m], movers, room)
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
