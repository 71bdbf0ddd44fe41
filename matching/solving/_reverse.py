"""Reverse auction rounds: providers lower the price of free slots priced above zero.

The certificate needs every free slot at price 0 (an unused unit of capacity has a zero
dual). Forward rounds never leave a free slot with a positive price within a phase, but
the start of an eps-scaling phase can, when it releases holders. Reverse rounds fix that
(Bertsekas' reverse auction for asymmetric problems, with lambda = 0): provider ``j`` with
``k`` such slots ranks the persons not holding one of its slots by
``w_i = g_ij - profit_i``, offers the slots to the best ``k`` with ``w_i >= eps`` at
``max(0, w_(k+1) - eps)`` (the lowest price keeping every other person eps-happy), and
every person accepts its most profitable offer, freeing its old slot.

Jacobi safety: a provider's new price ignores its own holders, so they must not move in
the same round. A provider therefore only acts if none of the persons it makes offers to
holds a slot at another acting provider; among such conflicting providers the one with the
lower index acts (so at least one provider acts every round).
"""

from __future__ import annotations

import numpy as np

from matching.solving import _market as mkt
from matching.solving._freeze import freeze_stuck, is_tail
from matching.solving._market import Floats, Ints, Market


def reverse(mk: Market, eps: float, budget: int) -> tuple[int, bool]:
    """Reverse rounds until no free slot has a positive price.

    Returns the column entries evaluated and whether it finished within ``budget``;
    refreshes the persons' ``gout`` bounds when prices went down.
    """
    work, rounds = 0, 0
    while work < budget:
        free = np.flatnonzero((mk.slot_holder < 0) & (mk.slot_price > 0.0))
        if free.size == 0:
            break
        rounds += 1
        if is_tail(mk, rounds, free.size) and freeze_stuck(mk, mk.owner.size + mk.slot_prov[free]):
            continue
        work += _round(mk, eps)
    if work:
        mkt.recompute_gout(mk)
    return work, work < budget


def _round(mk: Market, eps: float) -> int:
    mkt.equalize(mk)
    free = np.flatnonzero((mk.slot_holder < 0) & (mk.slot_price > 0.0))
    providers, n_free = np.unique(mk.slot_prov[free], return_counts=True)
    persons, prov, gain, offer_price = _offers(mk, eps, providers, n_free)
    acting = _acting(mk, providers, persons, prov)
    keep = acting[np.searchsorted(providers, prov)]
    persons, prov, gain = persons[keep], prov[keep], gain[keep]
    price = offer_price[np.searchsorted(providers, prov)]
    order = np.lexsort((prov, price - gain, persons))  # per person: best profit first
    persons, prov, gain, price = persons[order], prov[order], gain[order], price[order]
    take = np.concatenate([[True], persons[1:] != persons[:-1]]) if persons.size else persons
    old = mk.owner[persons[take]]
    _move(mk, free, persons[take], prov[take], gain[take], price[take])
    _cap_prices(mk, providers[acting], offer_price[acting])
    mkt.resort(mk, np.union1d(providers[acting], mk.slot_prov[old[old >= 0]]))
    return int(np.diff(mk.columns().indptr)[providers].sum())


def _offers(
    mk: Market, eps: float, providers: Ints, n_free: Ints
) -> tuple[Ints, Ints, Floats, Floats]:
    """Offers (person, provider, gain) and each provider's new price for its free slots."""
    persons, prov, value, gain = _column_values(mk, providers)
    order = np.lexsort((-value, prov))  # stable: lower person index first among ties
    persons, prov, value, gain = persons[order], prov[order], value[order], gain[order]
    seg = np.searchsorted(providers, prov)
    rank = np.arange(prov.size) - np.searchsorted(prov, prov)
    k = n_free[seg]
    nxt = np.full(providers.size, -np.inf)
    at_k = rank == k
    nxt[seg[at_k]] = value[at_k]
    offered = (rank < k) & (value >= eps)
    return persons[offered], prov[offered], gain[offered], np.maximum(nxt - eps, 0.0)


def _column_values(mk: Market, providers: Ints) -> tuple[Ints, Ints, Floats, Floats]:
    """Entries ``(person, provider, g - profit, g)`` of the given columns.

    Persons already holding a slot of that provider are left out.
    """
    csc = mk.columns()
    deg = csc.indptr[providers + 1] - csc.indptr[providers]
    prov = np.repeat(providers, deg)
    idx = np.arange(prov.size) - np.repeat(np.cumsum(deg) - deg, deg)
    idx += np.repeat(csc.indptr[providers], deg)
    persons = csc.indices[idx].astype(np.int64)
    gain = csc.data[idx]
    elsewhere = mkt.home(mk, persons) != prov
    persons, prov, gain = persons[elsewhere], prov[elsewhere], gain[elsewhere]
    return persons, prov, gain - mkt.profit(mk, persons), gain


def _acting(mk: Market, providers: Ints, persons: Ints, prov: Ints) -> mkt.Bools:
    """Mask of ``providers`` free of conflicts with a lower-index acting provider."""
    where = mkt.home(mk, persons)
    pos = np.minimum(np.searchsorted(providers, where), providers.size - 1)
    clash = providers[pos] == where
    loser = np.maximum(prov[clash], where[clash])
    return ~np.isin(providers, loser)


def _move(mk: Market, free: Ints, persons: Ints, prov: Ints, gain: Floats, price: Floats) -> None:
    """Move each person into one of the ``free`` slots of ``prov``, at ``price``."""
    if persons.size == 0:
        return
    old = mk.owner[persons]
    mk.slot_holder[old[old >= 0]] = -1
    free = free[np.isin(mk.slot_prov[free], prov)]
    order = np.lexsort((persons, prov))
    persons, prov, gain, price = persons[order], prov[order], gain[order], price[order]
    rank = np.arange(prov.size) - np.searchsorted(prov, prov)
    slot = free[np.searchsorted(mk.slot_prov[free], prov) + rank]
    mk.slot_holder[slot], mk.slot_price[slot] = persons, price
    mk.owner[persons], mk.own_gain[persons] = slot, gain


def _cap_prices(mk: Market, providers: Ints, offer_price: Floats) -> None:
    """Cap every slot price of ``providers`` (free or held) at the provider's offer.

    Lowering a holder's price only raises its profit, and keeps holders at the entry
    price, which the certificate relies on.
    """
    slots = mkt.slots_of(mk, providers)
    cap = np.repeat(offer_price, mk.cap[providers])
    mk.slot_price[slots] = np.minimum(mk.slot_price[slots], cap)
