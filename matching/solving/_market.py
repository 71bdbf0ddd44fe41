"""Working state of the auction in :mod:`matching.solving._auction`, and its basic operations.

Persons are requests, providers are split into *slots* (one per unit of capacity), each
with its own price. A person holds one slot, its private zero-gain *dummy* (unmatched),
or nothing yet. The *entry price* of a provider is its cheapest slot: the price a newcomer
must beat, and the provider's dual variable in the certificate.

Each person keeps a dense list of ``T`` candidates (gain, provider) plus ``gout``, an upper
bound on the value ``g - p`` of every unlisted candidate. Values are only read from the
list; when the best listed value falls below ``gout`` the list is rebuilt from the full
CSR row with the best ``T`` current values. ``gout`` stays valid while prices only rise;
after prices fall (reverse rounds) :func:`recompute_gout` restores it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

Ints = NDArray[np.int64]
Int32s = NDArray[np.int32]  # what scipy.sparse.csgraph returns (predecessors, component labels)
Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]

UNASSIGNED, DUMMY, FROZEN = -1, -2, -3  # FROZEN: component handed to the exact solver
WIDTH = 12  # listed candidates per person
RELIST_CHUNK = 1 << 19  # padded block entries per relist pass (bounds its memory)


@dataclass
class Market:
    """Mutable arrays of one auction run (never shared, never returned to callers)."""

    csr: sp.csr_array  # (n, m) gains, canonical
    listed: Bools  # (nnz,) entry is in its person's dense list
    gain: Floats  # (n, T) listed gains, -inf padding
    prov: Ints  # (n, T) listed providers, padding = m (a sentinel with price +inf)
    gout: Floats  # (n,) bound on unlisted values, -inf if none
    cap: Ints  # (m,) slots per provider
    off: Ints  # (m + 1,) slot offsets; a provider's slots sorted by price, descending
    slot_price: Floats  # (S,)
    slot_holder: Ints  # (S,) person, or -1 when free
    slot_prov: Ints  # (S,)
    entry: Floats  # (m + 1,) cheapest slot price; +inf for the sentinel and slotless
    owner: Ints  # (n,) slot held, or UNASSIGNED / DUMMY
    own_gain: Floats  # (n,) gain of the held slot (0 otherwise)
    csc: sp.csc_array | None = None  # full columns, built on first need (reverse rounds)
    csc_cols: Int32s | None = None  # (nnz,) provider of each CSC entry
    labels: Int32s | None = None  # (n + m,) connected component of persons then providers
    exact_of: Ints | None = None  # (n,) exact solver's provider for FROZEN persons
    exact_price: Floats | None = None  # (m,) exact solver's duals for frozen providers
    reach: float = np.inf  # distance cap of the next global price update (see there)

    def columns(self) -> sp.csc_array:
        if self.csc is None:
            self.csc = self.csr.tocsc()
        return self.csc

    def column_of_entry(self) -> Int32s:
        """Provider of every entry of :meth:`columns`, in its order (cached; int32 like
        scipy's own indices, half the memory of int64 on an array of every pair)."""
        if self.csc_cols is None:
            csc = self.columns()
            self.csc_cols = np.repeat(np.arange(csc.shape[1], dtype=np.int32), np.diff(csc.indptr))
        return self.csc_cols


def build(csr: sp.csr_array, capacity: Ints) -> Market:
    """Initial market: all prices 0, nobody assigned, lists = best ``T`` gains per row.

    ``capacity`` must already be clipped to each provider's number of candidates.
    """
    n, m = csr.shape
    deg = np.diff(csr.indptr)
    width = int(min(max(int(deg.max(initial=0)), 1), WIDTH))
    mk = Market(
        csr, np.zeros(csr.nnz, dtype=bool), np.full((n, width), -np.inf),
        np.full((n, width), m, dtype=np.int64), np.full(n, -np.inf), capacity,
        np.concatenate([[0], np.cumsum(capacity)]).astype(np.int64),
        np.zeros(int(capacity.sum())), np.full(int(capacity.sum()), -1, dtype=np.int64),
        np.repeat(np.arange(m, dtype=np.int64), capacity), np.full(m + 1, np.inf),
        np.full(n, UNASSIGNED, dtype=np.int64), np.zeros(n),
    )  # fmt: skip
    mk.entry[:-1][capacity > 0] = 0.0
    relist(mk, np.arange(n, dtype=np.int64))
    return mk


def relist(mk: Market, persons: Ints) -> None:
    """Rebuild the lists of ``persons``: their ``T`` best candidates at current prices.

    Rows are laid out in a padded ``(len(persons), max degree)`` block and cut with
    ``argpartition``, which costs O(block) rather than a sort; the list is then ordered
    by provider index. The choice among values tied at the cut depends only on the
    row's own content, never on the order of the rows. Large sets go in chunks of about
    ``RELIST_CHUNK`` entries, so the working memory is a few MB whatever the problem.
    """
    indptr = mk.csr.indptr
    deg = indptr[persons + 1] - indptr[persons]
    width = mk.gain.shape[1]
    entries = int(deg.sum()) + persons.size * (width + 1)
    if persons.size > 1 and entries > RELIST_CHUNK:  # the block and its index arrays
        for part in np.array_split(persons, -(-entries // RELIST_CHUNK)):  # cost ~7 words
            relist(mk, part)  # per entry: 200k x 30 pairs in one pass peaked at +355 MB
        return
    padded = persons.size * max(int(deg.max(initial=0)), width + 1)
    if persons.size > 1 and padded > 4 * (int(deg.sum()) + persons.size * (width + 1)):
        by_degree = persons[np.argsort(deg, kind="stable")]  # skewed degrees: split the
        relist(mk, by_degree[: persons.size // 2])  # block so padding stays O(entries)
        relist(mk, by_degree[persons.size // 2 :])
        return
    block = np.full((persons.size, max(int(deg.max(initial=0)), width + 1)), -1)
    seg = np.repeat(np.arange(persons.size), deg)
    rank = np.arange(seg.size) - np.repeat(np.cumsum(deg) - deg, deg)
    idx = rank + indptr[persons][seg]
    block[seg, rank] = idx
    mk.listed[idx] = False
    value = np.where(block >= 0, mk.csr.data[block] - mk.entry[mk.csr.indices[block]], -np.inf)
    cut = np.argpartition(-value, width, axis=1)
    top, spill = cut[:, :width], cut[:, width]
    chosen = np.take_along_axis(block, top, axis=1)
    ar = np.arange(persons.size)
    mk.gout[persons] = value[ar, spill]
    real = chosen >= 0
    # list order = provider index, so argmax breaks value ties towards the lower index
    column = np.where(real, mk.csr.indices[np.maximum(chosen, 0)], mk.entry.size - 1)
    chosen = np.take_along_axis(chosen, np.argsort(column, axis=1, kind="stable"), axis=1)
    real = chosen >= 0
    mk.gain[persons] = np.where(real, mk.csr.data[chosen], -np.inf)
    mk.prov[persons] = np.where(real, mk.csr.indices[chosen], mk.entry.size - 1)
    mk.listed[chosen[real]] = True


def recompute_gout(mk: Market) -> None:
    """Exact ``gout`` for every person at current prices (after prices went down)."""
    csr = mk.csr
    value = np.where(mk.listed, -np.inf, csr.data - mk.entry[csr.indices])
    nonempty = np.flatnonzero(np.diff(csr.indptr))
    mk.gout[:] = -np.inf
    if value.size:
        mk.gout[nonempty] = np.maximum.reduceat(value, csr.indptr[nonempty])


def evaluate(mk: Market, persons: Ints) -> tuple[Ints, Floats, Floats, Floats]:
    """Best provider, its gain, best value ``beta`` and second value ``omega >= 0``.

    ``beta`` is exact (lists that cannot decide are rebuilt first); ``omega`` may
    over-estimate the second value by ``gout``, which only makes bids smaller.
    """
    best, best_gain, beta, omega = _evaluate_listed(mk, persons)
    short = np.flatnonzero(beta < mk.gout[persons])
    if short.size:
        relist(mk, persons[short])
        best[short], best_gain[short], beta[short], omega[short] = _evaluate_listed(
            mk, persons[short]
        )
    return best, best_gain, beta, omega


def _evaluate_listed(mk: Market, persons: Ints) -> tuple[Ints, Floats, Floats, Floats]:
    gain, prov = mk.gain[persons], mk.prov[persons]
    value = gain - mk.entry[prov]
    col = value.argmax(axis=1)
    ar = np.arange(persons.size)
    beta = value[ar, col]
    value[ar, col] = -np.inf
    omega = np.maximum(np.maximum(value.max(axis=1), mk.gout[persons]), 0.0)
    return prov[ar, col], gain[ar, col], beta, omega


def slots_of(mk: Market, providers: Ints) -> Ints:
    """Slot indices of ``providers``, provider by provider."""
    counts = mk.cap[providers]
    starts = np.repeat(mk.off[providers] - (np.cumsum(counts) - counts), counts)
    return starts + np.arange(int(counts.sum()))


def resort(mk: Market, providers: Ints) -> None:
    """Restore descending slot prices within ``providers`` and refresh their entry."""
    slots = slots_of(mk, providers)
    order = np.lexsort((-mk.slot_price[slots], mk.slot_prov[slots]))
    src = slots[order]
    mk.slot_price[slots], mk.slot_holder[slots] = mk.slot_price[src], mk.slot_holder[src]
    held = mk.slot_holder[slots] >= 0
    mk.owner[mk.slot_holder[slots][held]] = slots[held]
    refresh_entry(mk, providers)


def refresh_entry(mk: Market, providers: Ints) -> None:
    mk.entry[providers] = mk.slot_price[mk.off[providers + 1] - 1]


def equalize(mk: Market) -> None:
    """Let every holder pay its provider's entry price (never raises anyone's price).

    Forward bids let holders pay more than the entry price. The certificate only sees
    entry prices and reverse rounds need the price paid to be the one that counts, so
    overpayments are dropped before them; nobody else's values change.
    """
    held = np.flatnonzero(mk.slot_holder >= 0)
    over = held[mk.slot_price[held] > mk.entry[mk.slot_prov[held]]]
    if over.size:
        mk.slot_price[over] = mk.entry[mk.slot_prov[over]]
        resort(mk, np.unique(mk.slot_prov[over]))


def profit(mk: Market, persons: Ints) -> Floats:
    """Gain minus price paid (0 on the dummy)."""
    slot = mk.owner[persons]
    paid = mk.slot_price[np.maximum(slot, 0)]
    return np.where(slot >= 0, mk.own_gain[persons] - paid, 0.0)


def home(mk: Market, persons: Ints) -> Ints:
    """Provider whose slot each person holds; -1 on the dummy or unassigned."""
    slot = mk.owner[persons]
    return np.where(slot >= 0, mk.slot_prov[np.maximum(slot, 0)], -1)


def prices(mk: Market) -> Floats:
    """Entry prices (0 for providers without slots), exact duals in frozen components."""
    p = mk.entry[:-1]
    p = np.where(np.isfinite(p), p, 0.0)
    return p if mk.exact_price is None else p + mk.exact_price


def provider_of(mk: Market) -> Ints:
    out = np.full(mk.owner.size, -1, dtype=np.int64)
    held = mk.owner >= 0
    out[held] = mk.slot_prov[mk.owner[held]]
    if mk.exact_of is not None:
        frozen = mk.owner == FROZEN
        out[frozen] = mk.exact_of[frozen]
    return out


def gap(mk: Market) -> float:
    """Dual bound at the entry prices minus the objective, frozen components left out.

    (Their exact solution has no gap; their providers are at price 0 in the market.)
    """
    csr, p = mk.csr, mk.entry[:-1]
    p = np.where(np.isfinite(p), p, 0.0)
    nonempty = np.flatnonzero(np.diff(csr.indptr))
    u = np.maximum.reduceat(csr.data - p[csr.indices], csr.indptr[nonempty])
    u[mk.owner[nonempty] == FROZEN] = 0.0
    bound = float(np.maximum(u, 0.0).sum() + mk.cap.astype(np.float64) @ p)
    return bound - float(mk.own_gain.sum())
