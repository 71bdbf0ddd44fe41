"""Exact solve when requests want teams: the transportation LP with unit pair capacities.

A request ``i`` wanting ``k_i`` providers is served by up to ``k_i`` *distinct* providers in
one optimisation::

    maximise    sum_e g_e x_e                     over candidate entries e = (i, c)
    subject to  sum_{e in row i} x_e <= k_i        for every request  (dual u_i >= 0)
                sum_{e in column c} x_e <= cap_c   for every column   (dual p_c >= 0)
                sum_{e in group q} x_e <= 1        for every request × provider group
                0 <= x_e <= 1

A group holds the entries of one request on one provider: one entry without fairness, one
per slot column with it (a provider split into slots must still serve a request once).
Rows and groups form one laminar family, columns another, so the constraint matrix is
totally unimodular and HiGHS' vertex solution is integral (checked below).

Solved first as a capacitated assignment on a slightly larger graph (:func:`_gadget`) by the
fast exact solver, whose prices certify the answer through the bound below; HiGHS solves the
LP only when that certificate leaves a gap (on a restricted set of entries first). At
10k x 10k the LP took the whole run from 2.3 s to 8-14 s and ~500 MB, with one team request
or two thousand; the assignment keeps it at 2.3-2.6 s.

Certificate: for any prices ``p >= 0``, with ``v_q = max(0, max_{e in q} g_e - p_c(e))``,
``bound(p) = sum_i (sum of the k_i largest v_q of row i) + cap . p`` is the objective of a
feasible dual (``u_i`` = the ``k_i``-th largest ``v_q``, group duals the excess), so it bounds
the optimum from above whatever produced ``p``. With ``k_i = 1`` and single-entry groups it
is :func:`matching.solving.certificate.dual_bound`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import linprog

from matching.errors import MatchingError
from matching.solving.solve import solve_assignment

__all__ = ["TeamSolution", "solve_team", "team_bound"]

GAP_TOL = 1e-9  # relative, as certified by :func:`team_bound`
_INTEGRAL_TOL = 1e-6
#: Interior point with crossover first (faster here: 35 s against 49 s at 10k x 10k with 20%
#: teams, load 11); dual simplex if its answer is not a vertex.
_METHODS = ("highs-ipm", "highs-ds")
_EXTRA = 4  # entries kept per row beyond its demand, at first
_ROUNDS = 6

TeamSolution = tuple[NDArray[np.bool_], NDArray[np.float64], float, float]


def team_bound(
    csr: sp.csr_array,
    capacity: NDArray[np.int64],
    demand: NDArray[np.int64],
    group: NDArray[np.int64],
    prices: NDArray[np.float64],
) -> float:
    """Dual objective of prices ``p`` (module docstring); ``group`` numbers each entry's
    request × provider group, groups never spanning two rows."""
    p = np.maximum(prices, 0.0)
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    net = csr.data - p[csr.indices]
    n_groups = int(group.max()) + 1 if group.size else 0
    value = np.zeros(n_groups)
    np.maximum.at(value, group, np.maximum(net, 0.0))
    group_row = np.zeros(n_groups, dtype=np.int64)
    group_row[group] = rows
    order = np.lexsort((-value, group_row))  # per row, best group first
    ranked_row = group_row[order]
    start = np.searchsorted(ranked_row, ranked_row)
    within = np.arange(n_groups) - start
    top = within < demand[ranked_row]
    return float(value[order][top].sum() + capacity.astype(np.float64) @ p)


def solve_team(
    csr: sp.csr_array,
    capacity: NDArray[np.int64],
    demand: NDArray[np.int64],
    group: NDArray[np.int64],
    *,
    lp_only: bool = False,
) -> TeamSolution:
    """Optimal team assignment with its certificate.

    First as an assignment for the fast exact solver (:func:`_gadget`), then, should its
    certificate leave a gap, the LP over a few entries per row (:func:`_restricted`), and
    last the whole LP; ``lp_only`` goes to the whole LP at once (the tests' reference).

    Parameters
    ----------
    csr : csr_array, shape (n_rows, n_cols)
        Gains > 0 of the candidate entries.
    capacity : ndarray of int64, shape (n_cols,)
    demand : ndarray of int64, shape (n_rows,)
        Providers wanted by each row (>= 1).
    group : ndarray of int64, shape (csr.nnz,)
        Request × provider group of each entry, numbered from 0.

    Returns
    -------
    chosen : ndarray of bool, shape (csr.nnz,)
    prices : ndarray of float64, shape (n_cols,)
        Column duals ``p >= 0`` from HiGHS' marginals.
    objective, bound : float
        ``bound`` recomputed here by :func:`team_bound`; ``bound - objective`` is within
        ``GAP_TOL`` of the total best gain, or :class:`MatchingError` is raised.
    """
    if csr.nnz == 0:
        return np.zeros(0, dtype=bool), np.zeros(csr.shape[1]), 0.0, 0.0
    tolerance = GAP_TOL * max(1.0, _top(csr) * float(demand.max()))
    problem = _Problem.of(csr, capacity, demand, group)
    if not lp_only:
        picked, prices = _gadget(problem)
        solution, proven = problem.certified(picked, prices, tolerance)
        if proven:
            return solution
        found = _restricted(problem, prices, tolerance)
        if found is not None:
            return found
    solution, proven = problem.certified(*_solve_lp(csr, capacity, demand, group), tolerance)
    if not proven:
        _, _, objective, bound = solution
        raise MatchingError(f"team solve not certified: bound {bound}, objective {objective}")
    return solution


@dataclass(frozen=True)
class _Problem:
    """The team problem as :func:`solve_team` takes it, with each entry's row (``rows``)."""

    csr: sp.csr_array
    rows: NDArray[np.intp]
    capacity: NDArray[np.int64]
    demand: NDArray[np.int64]
    group: NDArray[np.int64]

    @classmethod
    def of(
        cls,
        csr: sp.csr_array,
        capacity: NDArray[np.int64],
        demand: NDArray[np.int64],
        group: NDArray[np.int64],
    ) -> _Problem:
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
        return cls(csr, rows, capacity, demand, group)

    def certified(
        self, chosen: NDArray[np.bool_], prices: NDArray[np.float64], tolerance: float
    ) -> tuple[TeamSolution, bool]:
        """The solution ``chosen`` with its bound from ``prices``, and whether it is proven:
        it keeps every constraint (the bound says nothing of a choice that breaks one, and a
        rewritten or restricted solution is read back, not trusted) and the bound is within
        ``tolerance`` of its objective."""
        csr = self.csr
        objective = float(csr.data[chosen].sum())
        bound = team_bound(csr, self.capacity, self.demand, self.group, prices)
        per_row = np.bincount(self.rows[chosen], minlength=csr.shape[0])
        per_column = np.bincount(csr.indices[chosen], minlength=csr.shape[1])
        groups = self.group[chosen]
        proven = bool(
            bound - objective <= tolerance
            and (per_row <= self.demand).all()
            and (per_column <= self.capacity).all()
            and np.unique(groups).size == groups.size
        )
        return (chosen, prices, objective, bound), proven


def _top(csr: sp.csr_array) -> float:
    """The sum of each row's best gain: the scale of the certificate's tolerance."""
    starts = csr.indptr[np.flatnonzero(np.diff(csr.indptr))]
    return float(np.maximum.reduceat(csr.data, starts).sum())


def _restricted(
    problem: _Problem, prices: NDArray[np.float64], tolerance: float
) -> TeamSolution | None:
    """The LP over a restricted set of entries, certified over all of them; None when it is
    not within ``_ROUNDS`` rounds (the caller solves the whole LP).

    Why: HiGHS' time and memory grow with the entries, and a province's candidate lists hold
    ~50 per request while an optimum uses about one. Used when the assignment rewrite
    (:func:`_gadget`) is not proven, whose ``prices`` start it near the LP's own.

    Each round keeps each row's ``demand + extra`` entries of best reduced gain ``g - p`` and
    solves the LP on them: its solution is feasible for the whole problem, and
    :func:`team_bound` of its prices over *all* entries bounds the whole optimum, so
    bound = objective proves it optimal. Otherwise the entries the new prices rank best join
    the set (``extra`` doubles when none do).
    """
    csr, rows, demand = problem.csr, problem.rows, problem.demand
    keep = np.zeros(csr.nnz, dtype=bool)
    extra = _EXTRA
    for _ in range(_ROUNDS):
        before = int(keep.sum())
        reduced = csr.data - prices[csr.indices]
        keep |= _best_per_row(reduced, rows, demand + extra)
        if int(keep.sum()) == before:
            extra *= 2
            keep |= _best_per_row(reduced, rows, demand + extra)
        _, sub_group = np.unique(problem.group[keep], return_inverse=True)
        sub = _entries(csr, rows, keep)
        chosen_sub, prices = _solve_lp(sub, problem.capacity, demand, sub_group.astype(np.int64))
        chosen = np.zeros(csr.nnz, dtype=bool)
        chosen[np.flatnonzero(keep)[chosen_sub]] = True
        solution, proven = problem.certified(chosen, prices, tolerance)
        if proven:
            return solution
    return None


def _gadget(problem: _Problem) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """The team problem as a capacitated assignment, solved by the fast exact solver:
    (chosen entries, prices of the original columns).

    A row wanting one provider stays as it is. A team row ``i`` (``demand[i] = k > 1``)
    becomes ``k`` seat rows, and each of its groups ``q`` (a provider) an extra row ``F_q``
    and an extra unit column ``E_q``::

        seat of i -- E_q : gain B        F_q -- E_q : gain B
        F_q -- column of each entry e of q : gain g_e

    ``B`` exceeds every gain, so an optimum matches every ``F_q``: to ``E_q`` (the pair is
    unused) or, when a seat holds ``E_q``, to one of the provider's columns (the pair is
    used: ``B + g_e`` against ``B``, a gain of ``g_e``, spending the provider's capacity).
    ``E_q`` takes one seat, so a provider serves the request once, and the request's ``k``
    seats bound its providers: exactly the team LP's constraints, on a graph larger by
    two nodes per team pair only (a team row's ~50 candidates), where the LP grows with
    every candidate of every row.
    """
    csr, rows, capacity, demand = problem.csr, problem.rows, problem.capacity, problem.demand
    n_rows, n_cols = csr.shape
    team = demand[rows] > 1
    _, pair = np.unique(problem.group[team], return_inverse=True)  # team entry -> its pair q
    n_pairs = int(pair.max()) + 1 if pair.size else 0
    pair_row = np.zeros(n_pairs, dtype=np.int64)
    pair_row[pair] = rows[team]
    team_rows = np.flatnonzero(demand > 1)
    seat_row = np.repeat(team_rows, demand[team_rows])
    seat, q = _seat_pairs(seat_row, pair_row, n_rows)
    f0 = n_rows + len(seat_row)
    big = 2.0 * float(csr.data.max()) + 1.0
    each_pair = np.arange(n_pairs)
    r = np.concatenate([rows[~team], n_rows + seat, f0 + each_pair, f0 + pair])
    c = np.concatenate([csr.indices[~team], n_cols + q, n_cols + each_pair, csr.indices[team]])
    g = np.concatenate([csr.data[~team], np.full(len(seat) + n_pairs, big), csr.data[team]])
    shape = (f0 + n_pairs, n_cols + n_pairs)
    solved = solve_assignment(
        sp.csr_array((g, (r, c)), shape=shape), np.r_[capacity, np.ones(n_pairs, np.int64)]
    )
    took = solved.provider_of
    picked = np.zeros(csr.nnz, dtype=bool)
    single = np.flatnonzero(~team)
    picked[single[took[rows[~team]] == csr.indices[~team]]] = True
    entries = np.flatnonzero(team)
    picked[entries[took[f0 + pair] == csr.indices[team]]] = True
    return picked, solved.prices[:n_cols]


def _seat_pairs(
    seat_row: NDArray[np.intp], pair_row: NDArray[np.int64], n_rows: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Every (seat, pair) of one row: each seat of a team row against each of its pairs."""
    order = np.argsort(pair_row, kind="stable")
    counts = np.bincount(pair_row, minlength=n_rows)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    per_seat = counts[seat_row]
    seat = np.repeat(np.arange(len(seat_row)), per_seat)
    offset = np.arange(int(per_seat.sum())) - np.repeat(np.cumsum(per_seat) - per_seat, per_seat)
    return seat, order[np.repeat(starts[seat_row], per_seat) + offset]


def _best_per_row(
    value: NDArray[np.float64], rows: NDArray[np.intp], most: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Entries among the ``most[row]`` best ``value`` of their row (ties by position)."""
    order = np.lexsort((-value, rows))
    ranked = rows[order]
    within = np.arange(len(order)) - np.searchsorted(ranked, ranked)
    best = np.zeros(len(value), dtype=bool)
    best[order[within < most[ranked]]] = True
    return best


def _entries(csr: sp.csr_array, rows: NDArray[np.intp], keep: NDArray[np.bool_]) -> sp.csr_array:
    """The kept entries as a matrix of the same shape, in the same (canonical) order."""
    indptr = np.r_[0, np.cumsum(np.bincount(rows[keep], minlength=csr.shape[0]))]
    sub = sp.csr_array((csr.data[keep], csr.indices[keep], indptr), shape=csr.shape)
    sub.has_canonical_format = True
    return sub


def _solve_lp(
    csr: sp.csr_array,
    capacity: NDArray[np.int64],
    demand: NDArray[np.int64],
    group: NDArray[np.int64],
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """The LP of the module docstring over ``csr``'s entries: (chosen, column prices)."""
    n_rows, n_cols = csr.shape
    rows = np.repeat(np.arange(n_rows), np.diff(csr.indptr))
    entries = np.arange(csr.nnz)
    blocks = [
        sp.csr_array((np.ones(csr.nnz), (rows, entries)), shape=(n_rows, csr.nnz)),
        sp.csr_array((np.ones(csr.nnz), (csr.indices, entries)), shape=(n_cols, csr.nnz)),
    ]
    bounds = [demand.astype(np.float64), capacity.astype(np.float64)]
    n_groups = int(group.max()) + 1
    if n_groups < csr.nnz:  # a provider split into slots: one slot per request
        blocks.append(sp.csr_array((np.ones(csr.nnz), (group, entries)), shape=(n_groups, csr.nnz)))
        bounds.append(np.ones(n_groups))
    a_ub, b_ub = sp.vstack(blocks, format="csr"), np.concatenate(bounds)
    x, marginals = _vertex(csr.data, a_ub, b_ub)
    return x > 0.5, np.maximum(-marginals[n_rows : n_rows + n_cols], 0.0)


def _vertex(
    gains: NDArray[np.float64], a_ub: sp.csr_array, b_ub: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """An integral optimal vertex of ``max gains.x, A x <= b, 0 <= x <= 1`` and the row
    duals (HiGHS signs: <= 0 for a maximisation written as a minimisation)."""
    for method in _METHODS:
        # sparse A_ub: HiGHS takes it (scipy documents it); scipy-stubs types it dense only
        res = linprog(  # type: ignore[call-overload]
            -gains,
            A_ub=a_ub,
            b_ub=b_ub,
            bounds=(0.0, 1.0),
            method=method,
            options={"dual_feasibility_tolerance": 1e-10, "primal_feasibility_tolerance": 1e-10},
        )
        if res.status != 0:  # always feasible (x = 0) and bounded (0 <= x <= 1)
            raise MatchingError(f"HiGHS failed on the team LP: {res.message}")
        x = np.asarray(res.x)
        if np.all(np.minimum(x, 1.0 - x) <= _INTEGRAL_TOL):
            return x, np.asarray(res.ineqlin.marginals)
    raise MatchingError("HiGHS returned a fractional team assignment (not a vertex)")
