"""Vectorised forward/reverse auction with epsilon-scaling for capacitated assignment.

Model (Bertsekas' auction with similar objects, asymmetric variant). Provider ``j`` is
``c_j`` identical *slots*, each with its own price; a request ("person") holds one slot
or its private zero-gain *dummy* (unmatched). The entry price ``p_j`` of a provider is its
cheapest slot. Invariants, with ``pi_i`` the person's profit (gain minus price paid, 0 on
the dummy):

* eps-complementary slackness: ``pi_i >= max(0, max_{l != own(i)} g_il - p_l) - eps``;
* every free slot has price 0 once a phase ends (the "lambda = 0" condition).

They give ``dual_bound(p) - objective <= n_matched * eps`` (see ``matching.solve``).

Each phase (eps fixed) runs

1. *unassign* every person that violates eps-CS for the new, smaller eps;
2. *forward* Jacobi rounds: every unassigned person bids for its best provider
   ``price + (best - second best) + eps``; a provider keeps its ``c_j`` highest bids
   (ties: incumbent first, then lower person index) and releases the rest;
3. *reverse* Jacobi rounds: a provider with free slots priced above 0 offers them to the
   persons who would gain most by moving, at ``max(0, next best - eps)``; each person
   accepts its best offer and frees its old slot (which may then need a reverse round).

Phases shrink eps by ``_THETA`` until the certificate closes the gap. Arrays are dense
``(n, T)`` copies of each row's ``T`` best gains; a person whose list cannot decide its
bid (its best listed value is below ``gout``, the best unlisted gain) is evaluated on its
full CSR row instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = ["AuctionOutcome", "auction"]

_THETA = 6.0  # eps reduction factor between phases
_RAISE = 1000.0  # eps increase factor when a phase turns into a price war
_WAR = 30  # a phase costing more than _WAR * n evaluations is a price war
_EPS_FLOOR = 1e-13  # smallest eps, relative to the largest gain (~500 ulps)
_MAX_WIDTH = 24  # dense candidate columns per person
_UNASSIGNED, _DUMMY = -1, -2

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class AuctionOutcome:
    """Result of :func:`auction`: assignment, prices (certificate input), work done."""

    provider_of: Ints
    prices: Floats
    work: int
    finished: bool


@dataclass
class _Market:
    """Mutable working state of one auction (private to this module)."""

    gain: Floats  # (n, T) best gains per person, descending, -inf padding
    prov: Ints  # (n, T) provider of each listed gain, padding = n_prov (sentinel)
    gout: Floats  # (n,) largest unlisted gain, 0 if none
    csr: sp.csr_array  # full rows, for persons whose list is not enough
    csc: sp.csc_array  # full columns, for reverse rounds
    cap: Ints  # (m,) slots per provider
    off: Ints  # (m + 1,) slot offsets; slots of j sorted by price descending
    slot_price: Floats  # (S,)
    slot_holder: Ints  # (S,) person or -1 when free
    slot_prov: Ints  # (S,)
    entry: Floats  # (m + 1,) cheapest slot price, +inf for the sentinel / no slot
    owner: Ints  # (n,) slot held, or _UNASSIGNED / _DUMMY
    own_gain: Floats  # (n,) gain of the held slot's provider (0 on the dummy)


def auction(csr: sp.csr_array, capacity: Ints, *, tol: float, max_work: int) -> AuctionOutcome:
    """Auction until ``bound - objective <= tol``, within ``max_work`` person-evaluations.

    Parameters
    ----------
    csr : csr_array, shape (n, m)
        Canonical CSR, gains > 0.
    capacity : ndarray of int64, shape (m,)
    tol : float
        Absolute gap at which the answer counts as optimal.
    max_work : int
        Budget, in person (or column entry) evaluations, over all rounds; ``finished``
        is False when it runs out or eps reaches the floating-point floor first.

    Notes
    -----
    The first phase uses the final ``eps = tol / n`` directly: on generic data the
    auction then converges in one phase. A phase whose rounds cost more than
    ``_WAR * n`` evaluations is a price war (near ties); it continues with eps raised
    ``_RAISE`` times (eps-CS for a larger eps still holds), and later phases shrink eps
    by ``_THETA`` back to the target (classic eps-scaling).
    """
    n = csr.shape[0]
    mk = _build(csr, capacity)
    if csr.nnz == 0:
        return AuctionOutcome(_provider_of(mk), mk.entry[:-1].copy(), 0, True)
    top = float(csr.data.max())
    floor = top * _EPS_FLOOR
    eps = max(tol / n, floor)
    work = 0
    while work < max_work:
        _unassign_violators(mk, eps)
        for step in (_forward, _reverse):
            while True:
                spent, done = step(mk, eps, min(_WAR * n, max_work - work))
                work += spent
                if done or work >= max_work:
                    break
                eps = min(eps * _RAISE, top)
        if work < max_work and _gap(mk) <= tol:
            return AuctionOutcome(_provider_of(mk), mk.entry[:-1].copy(), work, True)
        if eps <= floor:
            break
        eps = max(eps / _THETA, floor)
    return AuctionOutcome(_provider_of(mk), mk.entry[:-1].copy(), work, False)


def _build(csr: sp.csr_array, capacity: Ints) -> _Market:
    n, m = csr.shape
    deg = np.diff(csr.indptr)
    width = int(min(max(int(deg.max(initial=0)), 1), _MAX_WIDTH))
    rows = np.repeat(np.arange(n), deg)
    order = np.lexsort((csr.indices, -csr.data, rows))  # per row: gain desc, column asc
    rank = np.arange(csr.nnz) - np.repeat(csr.indptr[:-1], deg)
    listed = rank < width
    gain = np.full((n, width), -np.inf)
    prov = np.full((n, width), m, dtype=np.int64)
    gain[rows[listed], rank[listed]] = csr.data[order][listed]
    prov[rows[listed], rank[listed]] = csr.indices[order][listed]
    gout = np.zeros(n)
    spill = rank == width
    gout[rows[spill]] = csr.data[order][spill]
    cap = np.minimum(capacity, np.bincount(csr.indices, minlength=m)).astype(np.int64)
    off = np.concatenate([[0], np.cumsum(cap)]).astype(np.int64)
    n_slots = int(off[-1])
    entry = np.full(m + 1, np.inf)
    entry[:-1][cap > 0] = 0.0
    return _Market(
        gain, prov, gout, csr, csr.tocsc(), cap, off, np.zeros(n_slots),
        np.full(n_slots, -1, dtype=np.int64), np.repeat(np.arange(m), cap), entry,
        np.full(n, _UNASSIGNED, dtype=np.int64), np.zeros(n),
    )  # fmt: skip


def _evaluate(mk: _Market, persons: Ints) -> tuple[Ints, Floats, Floats, Floats]:
    """Best provider, its gain, best value ``beta`` and second value ``omega`` (>= 0).

    ``omega`` may over-estimate the true second value (by ``gout``), which only makes
    bids smaller; ``beta`` is exact, falling back to the full row when the list is short.
    """
    gain, prov = mk.gain[persons], mk.prov[persons]
    value = gain - mk.entry[prov]
    col = value.argmax(axis=1)
    ar = np.arange(persons.size)
    beta = value[ar, col]
    value[ar, col] = -np.inf
    omega = np.maximum(np.maximum(value.max(axis=1), mk.gout[persons]), 0.0)
    best, best_gain = prov[ar, col], gain[ar, col]
    short = np.flatnonzero(beta < mk.gout[persons])
    if short.size:
        best[short], best_gain[short], beta[short], omega[short] = _evaluate_rows(
            mk, persons[short]
        )
    return best, best_gain, beta, omega


def _evaluate_rows(mk: _Market, persons: Ints) -> tuple[Ints, Floats, Floats, Floats]:
    """Exact best / second-best over the full CSR rows of ``persons``."""
    indptr = mk.csr.indptr
    deg = indptr[persons + 1] - indptr[persons]
    seg = np.repeat(np.arange(persons.size), deg)
    idx = np.arange(seg.size) - np.repeat(np.cumsum(deg) - deg, deg) + indptr[persons][seg]
    cols = mk.csr.indices[idx]
    value = mk.csr.data[idx] - mk.entry[cols]
    order = np.lexsort((cols, -value, seg))
    first = np.cumsum(deg) - deg
    top = order[first]
    second = np.full(persons.size, 0.0)
    has2 = deg > 1
    second[has2] = value[order[first[has2] + 1]]
    return cols[top], mk.csr.data[idx][top], value[top], np.maximum(second, 0.0)


def _forward(mk: _Market, eps: float, budget: int) -> tuple[int, bool]:
    """Jacobi forward rounds until every person holds a slot or its dummy.

    Returns the evaluations spent and whether it finished within ``budget``.
    """
    work = 0
    active = np.flatnonzero(mk.owner == _UNASSIGNED)
    while active.size and work < budget:
        work += active.size
        best, best_gain, beta, omega = _evaluate(mk, active)
        quits = beta <= 0.0
        mk.owner[active[quits]] = _DUMMY
        mk.own_gain[active[quits]] = 0.0
        bid = best_gain - omega + eps
        _resolve(mk, active[~quits], best[~quits], bid[~quits], best_gain[~quits])
        active = np.flatnonzero(mk.owner == _UNASSIGNED)
    return work, active.size == 0


def _slots_of(mk: _Market, providers: Ints) -> Ints:
    counts = mk.cap[providers]
    starts = np.repeat(mk.off[providers] - (np.cumsum(counts) - counts), counts)
    return starts + np.arange(int(counts.sum()))


def _resolve(mk: _Market, bidders: Ints, target: Ints, bid: Floats, bid_gain: Floats) -> None:
    """Each target provider keeps its ``c_j`` best offers among holders and new bids."""
    if bidders.size == 0:
        return
    providers = np.unique(target)
    slots = _slots_of(mk, providers)
    prov = np.concatenate([mk.slot_prov[slots], target])
    price = np.concatenate([mk.slot_price[slots], bid])
    who = np.concatenate([mk.slot_holder[slots], bidders])
    is_new = np.concatenate([np.zeros(slots.size, dtype=bool), np.ones(bidders.size, bool)])
    new_gain = np.concatenate([np.zeros(slots.size), bid_gain])
    order = np.lexsort((who, is_new, -price, prov))
    prov, price, who, is_new, new_gain = (
        prov[order], price[order], who[order], is_new[order], new_gain[order]
    )  # fmt: skip
    rank = np.arange(prov.size) - np.searchsorted(prov, prov)
    win = rank < mk.cap[prov]
    slot = mk.off[prov[win]] + rank[win]
    mk.slot_price[slot], mk.slot_holder[slot] = price[win], who[win]
    held = who[win] >= 0
    mk.owner[who[win][held]] = slot[held]
    fresh = win & is_new
    mk.own_gain[who[fresh]] = new_gain[fresh]
    losers = who[~win]
    losers = losers[losers >= 0]
    mk.owner[losers], mk.own_gain[losers] = _UNASSIGNED, 0.0
    _refresh(mk, providers)


def _unassign_violators(mk: _Market, eps: float) -> None:
    """Restore eps-CS for the new, smaller ``eps`` at the start of a phase.

    After :func:`_equalize`, release every person whose profit is more than ``eps``
    below its best alternative (another provider or the dummy), including persons on
    their dummy: a value in ``(eps_new, eps_old]`` was tolerated by the previous phase.
    """
    _equalize(mk)
    persons = np.flatnonzero(mk.owner != _UNASSIGNED)
    if persons.size == 0:
        return
    best, _, beta, omega = _evaluate(mk, persons)
    alternative = np.where(best == _home(mk, persons), omega, np.maximum(beta, 0.0))
    bad = _profit(mk, persons) < alternative - eps
    slot = mk.owner[persons]
    mk.slot_holder[slot[bad & (slot >= 0)]] = -1
    mk.owner[persons[bad]] = _UNASSIGNED
    mk.own_gain[persons[bad]] = 0.0


def _profit(mk: _Market, persons: Ints) -> Floats:
    """Gain minus the price each person pays (0 on its dummy)."""
    slot = mk.owner[persons]
    paid = mk.slot_price[np.maximum(slot, 0)]
    return np.where(slot >= 0, mk.own_gain[persons] - paid, 0.0)


def _home(mk: _Market, persons: Ints) -> Ints:
    """Provider whose slot each person holds, -1 on the dummy or unassigned."""
    slot = mk.owner[persons]
    return np.where(slot >= 0, mk.slot_prov[np.maximum(slot, 0)], -1)


def _reverse(mk: _Market, eps: float, budget: int) -> tuple[int, bool]:
    """Jacobi reverse rounds until no free slot has a positive price.

    Returns the column entries evaluated and whether it finished within ``budget``.
    """
    work = 0
    while work < budget:
        if not np.any((mk.slot_holder < 0) & (mk.slot_price > 0.0)):
            return work, True
        work += _reverse_round(mk, eps)
    return work, False


def _reverse_round(mk: _Market, eps: float) -> int:
    """One Jacobi reverse round for the providers owning positive-priced free slots.

    A provider may only act this round if none of the persons it makes offers to holds a
    slot at another acting provider (that provider's new price ignores its own holders,
    so they must stay put); among conflicting providers the lowest index acts.
    """
    _equalize(mk)
    free = np.flatnonzero((mk.slot_holder < 0) & (mk.slot_price > 0.0))
    providers, n_free = np.unique(mk.slot_prov[free], return_counts=True)
    persons, prov, gain, offer_price = _reverse_offers(mk, eps, providers, n_free)
    work = int(np.diff(mk.csc.indptr)[providers].sum())
    acting = _acting(mk, providers, persons, prov)
    keep = acting[np.searchsorted(providers, prov)]
    persons, prov, gain = persons[keep], prov[keep], gain[keep]
    price = offer_price[np.searchsorted(providers, prov)]
    order = np.lexsort((prov, price - gain, persons))  # per person: best profit first
    persons, prov, gain, price = persons[order], prov[order], gain[order], price[order]
    take = np.concatenate([[True], persons[1:] != persons[:-1]]) if persons.size else persons
    old = mk.owner[persons[take]]
    _move(mk, free, persons[take], prov[take], gain[take], price[take])
    _reprice_free(mk, providers[acting], offer_price[acting])
    _resort(mk, np.union1d(providers[acting], mk.slot_prov[old[old >= 0]]))
    return work


def _reverse_offers(
    mk: _Market, eps: float, providers: Ints, n_free: Ints
) -> tuple[Ints, Ints, Floats, Floats]:
    """Offers (person, provider, gain) and each provider's new price for its free slots.

    Provider ``j`` with ``k`` positive free slots ranks adjacent persons by
    ``w_i = g_ij - profit_i``; it offers its slots to the top ``k`` with ``w_i >= eps``
    at ``max(0, w_(k+1) - eps)``, the lowest price keeping everyone else eps-happy.
    """
    persons, prov, value, gain = _column_values(mk, providers)
    order = np.lexsort((persons, -value, prov))
    persons, prov, value, gain = persons[order], prov[order], value[order], gain[order]
    seg = np.searchsorted(providers, prov)
    rank = np.arange(prov.size) - np.searchsorted(prov, prov)
    k = n_free[seg]
    nxt = np.full(providers.size, -np.inf)
    at_k = rank == k
    nxt[seg[at_k]] = value[at_k]
    offered = (rank < k) & (value >= eps)
    return persons[offered], prov[offered], gain[offered], np.maximum(nxt - eps, 0.0)


def _acting(mk: _Market, providers: Ints, persons: Ints, prov: Ints) -> NDArray[np.bool_]:
    """Mask of ``providers`` free of conflicts with a lower-index acting provider."""
    home = _home(mk, persons)
    pos = np.minimum(np.searchsorted(providers, home), providers.size - 1)
    clash = providers[pos] == home
    loser = np.maximum(prov[clash], home[clash])
    return ~np.isin(providers, loser)


def _column_values(mk: _Market, providers: Ints) -> tuple[Ints, Ints, Floats, Floats]:
    """All (person, provider) entries of the given columns with ``g_ij - profit_i``.

    Persons already holding a slot of that provider are left out.
    """
    indptr = mk.csc.indptr
    deg = indptr[providers + 1] - indptr[providers]
    prov = np.repeat(providers, deg)
    idx = np.arange(prov.size) - np.repeat(np.cumsum(deg) - deg, deg)
    idx += np.repeat(indptr[providers], deg)
    persons = mk.csc.indices[idx].astype(np.int64)
    gain = mk.csc.data[idx]
    profit = _profit(mk, persons)
    elsewhere = _home(mk, persons) != prov
    return persons[elsewhere], prov[elsewhere], gain[elsewhere] - profit[elsewhere], gain[elsewhere]


def _move(mk: _Market, free: Ints, persons: Ints, prov: Ints, gain: Floats, price: Floats) -> None:
    """Move each person into one of the ``free`` slots of ``prov``, at ``price``."""
    if persons.size == 0:
        return
    old = mk.owner[persons]
    mk.slot_holder[old[old >= 0]] = -1
    free = free[np.isin(mk.slot_prov[free], prov)]
    order = np.lexsort((persons, prov))
    persons, prov, gain, price = persons[order], prov[order], gain[order], price[order]
    fprov = mk.slot_prov[free]
    rank = np.arange(prov.size) - np.searchsorted(prov, prov)
    slot = free[np.searchsorted(fprov, prov) + rank]
    mk.slot_holder[slot], mk.slot_price[slot] = persons, price
    mk.owner[persons], mk.own_gain[persons] = slot, gain


def _reprice_free(mk: _Market, providers: Ints, offer_price: Floats) -> None:
    """Cap every slot price of ``providers`` (free or held) at the provider's offer price.

    Lowering a holder's price only raises its profit, and keeps every holder within
    eps of its provider's entry price, which the certificate relies on.
    """
    slots = _slots_of(mk, providers)
    cap = np.repeat(offer_price, mk.cap[providers])
    mk.slot_price[slots] = np.minimum(mk.slot_price[slots], cap)


def _resort(mk: _Market, providers: Ints) -> None:
    """Restore descending slot prices within each provider and refresh entry prices."""
    slots = _slots_of(mk, providers)
    order = np.lexsort((mk.slot_holder[slots], -mk.slot_price[slots], mk.slot_prov[slots]))
    src = slots[order]
    mk.slot_price[slots], mk.slot_holder[slots] = mk.slot_price[src], mk.slot_holder[src]
    held = mk.slot_holder[slots] >= 0
    mk.owner[mk.slot_holder[slots][held]] = slots[held]
    _refresh(mk, providers)


def _refresh(mk: _Market, providers: Ints) -> None:
    """Recompute the entry (cheapest slot) price of ``providers``."""
    mk.entry[providers] = mk.slot_price[mk.off[providers + 1] - 1]


def _equalize(mk: _Market) -> None:
    """Let every holder pay its provider's entry price (never raises anyone's price).

    Forward bids let holders pay more than the entry price; the certificate only sees
    the entry price, and reverse rounds need the price paid to be the one that counts,
    so they start by dropping those overpayments.
    """
    held = np.flatnonzero(mk.slot_holder >= 0)
    over = held[mk.slot_price[held] > mk.entry[mk.slot_prov[held]]]
    if over.size:
        mk.slot_price[over] = mk.entry[mk.slot_prov[over]]
        _resort(mk, np.unique(mk.slot_prov[over]))


def _provider_of(mk: _Market) -> Ints:
    out = np.full(mk.owner.size, -1, dtype=np.int64)
    held = mk.owner >= 0
    out[held] = mk.slot_prov[mk.owner[held]]
    return out


def _gap(mk: _Market) -> float:
    """``dual_bound(entry) - objective`` with the request duals computed from all rows."""
    p = mk.entry[:-1]
    csr = mk.csr
    net = csr.data - p[csr.indices]
    nonempty = np.flatnonzero(np.diff(csr.indptr))
    u = np.maximum(np.maximum.reduceat(net, csr.indptr[nonempty]), 0.0)
    finite = np.isfinite(p)
    bound = float(u.sum() + mk.cap[finite].astype(np.float64) @ p[finite])
    return bound - float(mk.own_gain.sum())
