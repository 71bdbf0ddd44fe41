"""The bridge to the exact solver: candidate gains → sparse matrix → assignment.

Gains are ``fit × priority``; with the fairness option every provider is split into one
unit-capacity column per free slot with a decreasing multiplier (:func:`slot_columns`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.pins import Context, Pairs
from matching.scoring.candidates import Candidates
from matching.solving.solve import solve_assignment
from matching.solving.team import solve_team

__all__ = ["Solved", "slot_columns", "solve_open"]


@dataclass(frozen=True, slots=True)
class Solved:
    """The open part's solution, and the solver instance it solved (for the advice).

    Attributes
    ----------
    picks : ndarray of intp, shape (m,)
        Chosen candidate positions.
    multiplier : ndarray of float64, shape (m,)
        Their fairness slot multipliers (1 without fairness).
    bound : float
        The solver's proven upper bound on the open part of the objective.
    gains : csr_array, shape (n_rows, n_columns)
        The solver's matrix: rows are ``rows``, columns providers (or their slots).
    demand : ndarray of int64, shape (n_rows,)
        Providers each row may take.
    chosen : ndarray of bool, shape (gains.nnz,)
        The chosen entries of ``gains``.
    rows : ndarray of intp, shape (n_rows,)
        Canonical request index of each row.
    """

    picks: NDArray[np.intp]
    multiplier: NDArray[np.float64]
    bound: float
    gains: sp.csr_array
    demand: NDArray[np.int64]
    chosen: NDArray[np.bool_]
    rows: NDArray[np.intp]


def slot_columns(
    ctx: Context, prov: NDArray[np.intp], pins: Pairs
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64], NDArray[np.int64]]:
    """Solver columns for candidate providers ``prov`` (shape (n,)).

    Without fairness: one column per provider with its free capacity. With fairness φ:
    one unit-capacity column per free slot, the k-th slot of a provider (counted from its
    load plus its pins) multiplying gains by ``(1 - φ)^k``; by the rearrangement
    inequality the optimum fills a provider's best slots with its best pairs, so the
    expansion is exact. A provider gets at most ``min(free capacity, its candidates)``
    slot columns: a slot beyond its number of candidates can never be filled.

    Why slots at all (issue 9, item 2): the discount multiplies the pair's gain, so the
    k-th slot is worth ``g_ij (1 - φ)^k``, a value that depends on *which* request fills
    it. A min-cost-flow with one arc per candidate pair and convex per-slot arcs on the
    provider -> sink side can only express ``g_ij - c_k`` (a slot cost independent of the
    request): two requests of gains ``a > b`` on one provider are worth ``a + b - b φ``,
    so the second slot costs ``b φ``, which changes with ``b``, and no fixed ``c_k``
    reproduces the optimum in general. The exact concave form of a provider's value,
    ``sum_t φ (1 - φ)^(t-1) top_t(S)`` (``top_t``: the sum of the t best gains in S), needs
    one variable per pair and per t in its LP, i.e. the same pairs x slots as the
    expansion. Capacity stays one object with a multiplicity without fairness, where
    slots are identical.
    Returns per expanded entry the candidate position and column, its multiplier, and per
    column the capacity.
    """
    enc = ctx.enc
    providers, column, per = np.unique(prov, return_inverse=True, return_counts=True)
    if ctx.weights.fairness == 0:
        return np.arange(len(prov)), column, np.ones(len(prov)), enc.free[providers]
    slots = np.minimum(enc.free[providers], per)
    first = enc.load[providers] + np.bincount(pins.prov, minlength=enc.n_prov)[providers]
    entry = np.repeat(np.arange(len(prov)), slots[column])
    group_start = np.repeat(np.cumsum(slots[column]) - slots[column], slots[column])
    offset = np.arange(len(entry)) - group_start
    col_start = np.r_[0, np.cumsum(slots)[:-1]]
    multiplier = (1.0 - ctx.weights.fairness) ** (first[column[entry]] + offset)
    return entry, col_start[column[entry]] + offset, multiplier, np.ones(slots.sum(), np.int64)


def solve_open(
    ctx: Context, cand: Candidates, pins: Pairs, demand: NDArray[np.int64] | None = None
) -> Solved:
    """Exact solve over the candidates.

    ``demand`` (shape (n_req,)) counts the providers each request still wants; when every
    open request wants one (the default) the fast capacitated-assignment path runs,
    otherwise the team LP (:mod:`matching.solving.team`) serves each request with that many
    distinct providers in one optimisation.
    """
    gain = cand.fit * ctx.priority[cand.req]
    usable = np.flatnonzero(gain > 0)
    rows, row_of = np.unique(cand.req[usable], return_inverse=True)
    entry, column, multiplier, capacity = slot_columns(ctx, cand.prov[usable], pins)
    g = gain[usable][entry] * multiplier
    keep = np.flatnonzero(g > 0)
    r, c = row_of[entry[keep]], column[keep]
    want = np.ones(len(rows), np.int64) if demand is None else demand[rows].astype(np.int64)
    if np.any(want > 1):
        return _solve_teams(
            keep, (r, c, g[keep]), capacity, want, (usable[entry], multiplier, rows)
        )
    matrix = sp.csr_array((g[keep], (r, c)), shape=(len(rows), len(capacity)))
    result = solve_assignment(matrix, capacity)
    chosen = np.flatnonzero(result.provider_of >= 0)
    key = r.astype(np.int64) * len(capacity) + c
    order = np.argsort(key)
    found = order[np.searchsorted(key[order], chosen * len(capacity) + result.provider_of[chosen])]
    picks = keep[found]
    entry_rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    chosen_entries = result.provider_of[entry_rows] == matrix.indices
    return Solved(
        usable[entry[picks]],
        multiplier[picks],
        float(result.bound),
        matrix,
        want,
        chosen_entries,
        rows,
    )


def _solve_teams(
    keep: NDArray[np.intp],
    entries: tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]],
    capacity: NDArray[np.int64],
    want: NDArray[np.int64],
    expanded: tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.intp]],
) -> Solved:
    """The team LP over the same matrix; entries of one candidate (its slot columns under
    fairness) form one group, so a provider serves a request once."""
    r, c, g = entries
    candidate, multiplier, rows = expanded
    order = np.lexsort((c, r))  # canonical CSR order, built here so entries map back
    indptr = np.r_[0, np.cumsum(np.bincount(r, minlength=len(rows)))]
    matrix = sp.csr_array((g[order], c[order], indptr), shape=(len(rows), len(capacity)))
    matrix.has_canonical_format = True
    _, group = np.unique(candidate[keep][order], return_inverse=True)
    chosen, _, _, bound = solve_team(matrix, capacity, want, group.astype(np.int64))
    picks = keep[order[chosen]]
    return Solved(candidate[picks], multiplier[picks], bound, matrix, want, chosen, rows)
