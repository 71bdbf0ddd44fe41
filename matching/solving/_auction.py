"""Vectorised forward/reverse auction with adaptive eps for capacitated assignment.

Bertsekas' auction for the asymmetric assignment problem, with each provider split into
identical slots (see :mod:`matching.solving._market` for the state). Invariants, with
``profit_i`` the gain minus the price person ``i`` paid (0 on its dummy):

* eps-complementary slackness (eps-CS):
  ``profit_i >= max(0, max_{l != own(i)} g_il - p_l) - eps`` with ``p`` the entry prices;
* at the end of a phase every free slot has price 0 (the "lambda = 0" condition).

Together they give ``dual_bound(p) - objective <= n * eps`` (see ``matching.solving.solve``), so
eps = tol / n certifies; in practice the gap is far smaller and is measured exactly.

A phase (eps fixed) runs

1. *release*: every person violating eps-CS for the new eps gives up its slot;
2. *forward* Jacobi rounds: every unassigned person bids for its best provider
   ``gain - second best value + eps``; a provider keeps its ``c_j`` highest offers
   among holders and bidders (ties: holders first, then lower person index) and
   releases the rest, or the person takes its dummy when no value is positive;
3. *reverse* rounds (:mod:`matching.solving._reverse`) until no free slot has a positive price.

Every time the forward rounds have cost about as much as one pass over the candidate
pairs, a *global price update* (:mod:`matching.solving._price_update`, one compiled Dijkstra)
raises each provider's price by its distance to free capacity. It keeps eps-CS and turns
the price wars of equal or few distinct gains (thousands of eps-sized bids) into a few
passes: three gain values with binding capacity at 10k went from 158 s (HiGHS fallback)
to under a second. When at most ``_AUGMENT_MAX`` persons are left, the same shortest-path
tree also places them directly along vertex-disjoint augmenting paths (a tail that took
thousands of one-hop rounds, 50 s on a 2k instance, now takes 0.4 s).

eps schedule: the first phase starts at the target eps, which on generic data converges
in one phase. If its rounds cost more than ``_WAR * n`` evaluations (a price war between
near-tied persons) eps is raised ``_RAISE`` times, valid because eps-CS for a larger eps
still holds, and later phases shrink eps by ``_THETA`` back to the target (classic
eps-scaling). Everything is deterministic: no randomness, ties broken by index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from matching.solving import _market as mkt
from matching.solving._freeze import freeze_stuck, is_tail
from matching.solving._market import DUMMY, UNASSIGNED, Floats, Ints, Market
from matching.solving._price_update import update_prices
from matching.solving._reverse import reverse

__all__ = ["AuctionOutcome", "auction"]

_THETA = 6.0  # eps reduction factor between scaling phases
_RAISE = 1000.0  # eps increase factor when the first phase turns into a price war
_WAR = 30  # evaluations per person after which the first phase counts as a price war
_EPS_FLOOR = 1e-13  # smallest eps relative to the largest gain (~500 ulps)
_BLOCK = 4096  # persons bidding against the same prices within a round
_AUGMENT_MAX = 256  # unassigned persons up to which price updates also augment paths
_ROUND_COST = 200  # fixed cost of a Jacobi round, in person evaluations
_UPDATE_RATIO = 16  # a price update costs about nnz / this person evaluations
_YIELD = 8  # tail passes go on while the last placed at least 1 / this of the stuck
_TAIL_PAIRS = 100_000  # candidate pairs up to which a tail pass beats bidding rounds


@dataclass(frozen=True)
class AuctionOutcome:
    """Assignment, entry prices (the certificate's input) and work spent."""

    provider_of: Ints
    prices: Floats
    work: int
    finished: bool


def auction(csr: sp.csr_array, capacity: Ints, *, tol: float, max_work: int) -> AuctionOutcome:
    """Auction until ``bound - objective <= tol`` or ``max_work`` evaluations are spent.

    Parameters
    ----------
    csr : csr_array, shape (n, m)
        Canonical CSR of gains > 0.
    capacity : ndarray of int64, shape (m,)
        Clipped to each provider's number of candidates.
    tol : float
        Absolute gap at which the answer counts as optimal.
    max_work : int
        Budget in person (or column entry) evaluations; ``finished`` is False when it
        runs out, or when eps reaches the floating-point floor without certifying.
    """
    n = csr.shape[0]
    mk = mkt.build(csr, capacity)
    if csr.nnz == 0:
        return _outcome(mk, 0, True)
    top = float(csr.data.max())
    floor = top * _EPS_FLOOR
    eps, work, war = max(tol / n, floor), 0, max(_WAR * n, 1)  # every step makes progress
    while work < max_work:
        _release_violators(mk, eps)
        for step in (_forward, reverse):
            while work < max_work:
                spent, done = step(mk, eps, min(war, max_work - work))
                work += spent
                if done:
                    break
                eps = min(eps * _RAISE, top)
        if work < max_work and mkt.gap(mk) <= tol:
            return _outcome(mk, work, True)
        if eps <= floor:
            break
        eps, war = max(eps / _THETA, floor), max_work  # scaling phases: no more raising
    return _outcome(mk, work, False)


def _outcome(mk: Market, work: int, finished: bool) -> AuctionOutcome:
    return AuctionOutcome(mkt.provider_of(mk), mkt.prices(mk), work, finished)


def _forward(mk: Market, eps: float, budget: int) -> tuple[int, bool]:
    """Forward rounds until every person holds a slot or its dummy.

    A round processes the active persons in blocks of ``_BLOCK``, each bidding against
    the prices left by the previous block (Gauss-Seidel between blocks, Jacobi within
    one): on contested markets far fewer bids then lose to a bid of the same round.
    Returns the evaluations spent and whether it finished within ``budget``.
    """
    work, rounds, since = 0, 0, 0
    active = np.flatnonzero(mk.owner == UNASSIGNED)
    while active.size and work < budget:
        work, rounds = work + active.size, rounds + 1
        since += _ROUND_COST + active.size
        if since * _UPDATE_RATIO >= mk.csr.nnz:
            since, stuck = 0, None
            if active.size <= _AUGMENT_MAX and not np.any(mk.slot_price[mk.slot_holder < 0]):
                mkt.equalize(mk)  # movers then pay entry prices, see _price_update._augment
                stuck = active
            update_prices(mk, eps, stuck)
            active = active[mk.owner[active] == UNASSIGNED]
            if stuck is not None and mk.csr.nnz <= _TAIL_PAIRS:
                active = _augment_tail(mk, eps, stuck, active)
            if not active.size:
                break
        if is_tail(mk, rounds, active.size) and freeze_stuck(mk, active):
            active = active[mk.owner[active] == UNASSIGNED]
            continue
        losers = [_bid(mk, active[k : k + _BLOCK], eps) for k in range(0, active.size, _BLOCK)]
        active = np.sort(np.concatenate(losers))  # blocks' losers are disjoint
    return work, active.size == 0


def _augment_tail(mk: Market, eps: float, stuck: Ints, active: Ints) -> Ints:
    """Augment again on fresh shortest paths, with no bidding rounds in between.

    One pass places the stuck persons whose paths are vertex-disjoint, often a fifth
    of them; on a small market a Jacobi round costs mostly its fixed overhead, so a
    tail of a few hundred persons is cheaper to place by repeated passes (the product's
    region snapshots: 0.11 s -> 0.08 s) as long as each places a good share
    (``1 / _YIELD``). On large markets one pass costs as much as dozens of rounds and
    bidding is cheaper (hence the caller's ``_TAIL_PAIRS``). Every pass keeps the
    preconditions of :func:`matching.solving._price_update.update_prices` (holders
    pay their entry price, free slots cost 0), so eps-CS holds throughout.
    """
    while 0 < active.size <= stuck.size - max(stuck.size // _YIELD, 1):
        stuck = active
        mkt.equalize(mk)
        update_prices(mk, eps, stuck)
        active = active[mk.owner[active] == UNASSIGNED]
    return active


def _bid(mk: Market, persons: Ints, eps: float) -> Ints:
    """One Jacobi step for ``persons`` (ascending); returns who is left unassigned."""
    best, best_gain, beta, omega = mkt.evaluate(mk, persons)
    quits = beta <= 0.0
    mk.owner[persons[quits]] = DUMMY
    bidders = ~quits
    bid = best_gain[bidders] - omega[bidders] + eps
    return _resolve(mk, persons[bidders], best[bidders], bid, best_gain[bidders])


def _resolve(mk: Market, bidders: Ints, target: Ints, bid: Floats, bid_gain: Floats) -> Ints:
    """Each target provider keeps its ``c_j`` best offers among holders and new bids.

    ``bidders`` must be ascending. Returns the persons left unassigned (ascending):
    outbid holders and losing bidders.
    """
    if bidders.size == 0:
        return bidders
    providers = _distinct(target, mk.entry.size)
    slots = mkt.slots_of(mk, providers)
    prov = np.concatenate([mk.slot_prov[slots], target])
    price = np.concatenate([mk.slot_price[slots], bid])
    who = np.concatenate([mk.slot_holder[slots], bidders])
    order = _by_provider_then_price(prov, price, mk.entry.size - 1)
    prov, price, who = prov[order], price[order], who[order]
    rank = np.arange(prov.size) - np.searchsorted(prov, prov)
    win = rank < mk.cap[prov]
    slot = mk.off[prov[win]] + rank[win]
    mk.slot_price[slot], mk.slot_holder[slot] = price[win], who[win]
    winners = who[win]
    mk.owner[winners[winners >= 0]] = slot[winners >= 0]
    fresh = order[win] >= slots.size
    mk.own_gain[who[win][fresh]] = bid_gain[order[win][fresh] - slots.size]
    losers = who[~win]
    losers = np.sort(losers[losers >= 0])
    mk.owner[losers], mk.own_gain[losers] = UNASSIGNED, 0.0
    mkt.refresh_entry(mk, providers)
    return losers


def _by_provider_then_price(prov: Ints, price: Floats, n_prov: int) -> Ints:
    """Stable order by provider, then price descending.

    Stability breaks price ties in input order: holders (listed first) beat bidders,
    then the lower person index wins. With fewer than 2**16 providers the provider pass
    is numpy's O(N) radix sort on uint16, a good deal faster than ``lexsort``.
    """
    if n_prov > 1 << 16:
        return np.lexsort((-price, prov))
    first = np.argsort(-price, kind="stable")
    return first[np.argsort(prov[first].astype(np.uint16), kind="stable")]


def _distinct(values: Ints, bound: int) -> Ints:
    """Sorted distinct values in ``[0, bound)``: a mask when large, a sort when small."""
    if values.size < 256:
        return np.unique(values)
    mark = np.zeros(bound, dtype=bool)
    mark[values] = True
    return np.flatnonzero(mark)


def _release_violators(mk: Market, eps: float) -> None:
    """Restore eps-CS for a new, smaller ``eps`` at the start of a phase.

    After :func:`matching.solving._market.equalize`, every person whose profit is more than
    ``eps`` below its best alternative (another provider or the dummy) is released,
    persons on their dummy included: a value in ``(eps_new, eps_old]`` was tolerated by
    the previous phase but not by this one.
    """
    mkt.equalize(mk)
    persons = np.flatnonzero((mk.owner >= 0) | (mk.owner == DUMMY))  # not frozen
    if persons.size == 0:
        return
    best, _, beta, omega = mkt.evaluate(mk, persons)
    alternative = np.where(best == mkt.home(mk, persons), omega, np.maximum(beta, 0.0))
    bad = mkt.profit(mk, persons) < alternative - eps
    slot = mk.owner[persons]
    mk.slot_holder[slot[bad & (slot >= 0)]] = -1
    mk.owner[persons[bad]] = UNASSIGNED
    mk.own_gain[persons[bad]] = 0.0
