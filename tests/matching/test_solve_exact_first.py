"""The exact-first path of ``solve_assignment``: small problems go to LAPJVsp before the auction.

The product's region runs are small (a few thousand requests, K = 20), and with the
fairness option every provider arrives as one unit column per slot with decreasing gains:
the shape where the auction's identical slots bid against each other. Every hard family of
``test_solve_shapes`` plus that fairness shape and a product-like one (surplus capacity,
scores rounded to two decimals, so ties everywhere) is compared here with
``scipy.optimize.milp``, the certificate recomputed from the returned prices alone.

The exact path's prices are the least optimal duals, so they must be the value of one more
slot: re-solving with one more unit of a provider's capacity raises the optimum by exactly
its price (the figure recruitment advice reads).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.solving import solve as solve_module
from matching.solving.solve import SolveResult, solve_assignment
from tests.matching.test_solve_shapes import (
    NONE,
    Case,
    Ints,
    check_certificate,
    families,
    milp_optimum,
    with_pins_and_bans,
)

REL = 1e-9


@st.composite
def fairness_slots(draw: st.DrawFn) -> Case:
    """Providers expanded into unit columns, the k-th slot's gains times (1 - phi)^k.

    The columns ``matching.assign.slot_columns`` hands the solver when fairness is on.
    """
    n_req, n_prov = draw(st.integers(1, 25)), draw(st.integers(1, 5))
    phi = draw(st.sampled_from([0.01, 0.1, 0.5]))
    slots = np.array(draw(st.lists(st.integers(1, 6), min_size=n_prov, max_size=n_prov)))
    mask = np.array(draw(st.lists(st.booleans(), min_size=n_req * n_prov,
                                  max_size=n_req * n_prov))).reshape(n_req, n_prov)  # fmt: skip
    gains = np.round(np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=n_req * n_prov,
                                            max_size=n_req * n_prov))), 2)  # fmt: skip
    rows, cols = np.nonzero(mask)
    column_of = np.concatenate([[0], np.cumsum(slots)])
    k = np.concatenate([np.arange(s) for s in slots])
    r, c, g = [], [], []
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        for col in range(column_of[j], column_of[j + 1]):
            r.append(i)
            c.append(col)
            g.append(gains[i * n_prov + j] * (1 - phi) ** k[col])
    scores = sp.csr_array((np.array(g), (np.array(r, dtype=np.int64), np.array(c, dtype=np.int64))),
                          shape=(n_req, int(column_of[-1])))  # fmt: skip
    return scores, np.ones(int(column_of[-1]), dtype=np.int64), NONE, NONE


@st.composite
def product_like(draw: st.DrawFn) -> Case:
    """Surplus capacity, up to 6 candidates, scores on a 0.01 grid with popular providers."""
    n_req, n_prov = draw(st.integers(1, 40)), draw(st.integers(1, 10))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k = min(n_prov, draw(st.integers(1, 6)))
    rows = np.repeat(np.arange(n_req), k)
    cols = np.concatenate([rng.choice(n_prov, k, replace=False) for _ in range(n_req)])
    quality = rng.random(n_prov)
    gains = np.round(0.05 + 0.5 * rng.random(rows.size) + 0.4 * quality[cols], 2)
    capacity = rng.integers(0, 6, n_prov)
    scores = sp.csr_array((gains, (rows, cols)), shape=(n_req, n_prov))
    return scores, capacity.astype(np.int64), NONE, NONE


every_family = st.one_of(families, fairness_slots(), product_like())


def _open_pairs(case: Case) -> int:
    """Candidate pairs left once pins, bans and full providers are taken out."""
    scores, capacity, pinned, forbidden = case
    open_ = scores.toarray()
    open_[forbidden[:, 0], forbidden[:, 1]] = 0.0
    open_[pinned[:, 0]] = 0.0
    residual = capacity - np.bincount(pinned[:, 1], minlength=scores.shape[1])
    return int(np.count_nonzero(open_[:, residual > 0]))


def check(case: Case) -> SolveResult:
    scores, capacity, pinned, forbidden = case
    res = solve_assignment(scores, capacity, pinned=pinned, forbidden=forbidden)
    check_certificate(res, case)
    assert res.objective == pytest.approx(milp_optimum(*case), rel=REL, abs=1e-12)
    assert res.method == "exact" or not _open_pairs(case), "small problems go exact"
    again = solve_assignment(scores, capacity, pinned=pinned, forbidden=forbidden)
    assert np.array_equal(again.provider_of, res.provider_of), "not deterministic"
    assert np.array_equal(again.prices, res.prices), "not deterministic"
    return res


@settings(max_examples=80, deadline=None)
@given(every_family)
def test_every_family_matches_milp_and_certifies(case: Case) -> None:
    check(case)


@settings(max_examples=40, deadline=None)
@given(with_pins_and_bans(every_family))
def test_pins_and_forbidden_pairs_mixed_in(case: Case) -> None:
    check(case)


@settings(max_examples=40, deadline=None)
@given(st.one_of(product_like(), fairness_slots(), families))
def test_prices_are_the_value_of_one_more_slot(case: Case) -> None:
    """Re-solving with one more slot of ``j`` raises the optimum by exactly ``prices[j]``.

    (Providers with capacity 0 are left out: they are not in the open problem, and their
    price is only an upper bound, their best gain.)
    """
    scores, capacity, _, _ = case
    res = solve_assignment(scores, capacity)
    assert res.method == "exact" or not _open_pairs(case)
    scale = max(1.0, abs(res.objective))
    for j in np.flatnonzero(capacity > 0).tolist():
        more: Ints = capacity.copy()
        more[j] += 1
        gain = solve_assignment(scores, more).objective - res.objective
        assert gain == pytest.approx(res.prices[j], rel=1e-9, abs=1e-9 * scale), j


def test_large_problems_still_go_to_the_auction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the size caps the exact path is not tried; both paths reach the same optimum."""
    rng = np.random.default_rng(3)
    n_req, n_prov, k = 300, 200, 8
    rows = np.repeat(np.arange(n_req), k)
    cols = rng.integers(0, n_prov, rows.size)
    keys = np.unique(rows * n_prov + cols)
    gains = np.round(rng.random(keys.size), 2) + 0.01
    scores = sp.csr_array((gains, (keys // n_prov, keys % n_prov)), shape=(n_req, n_prov))
    capacity = rng.integers(1, 4, n_prov)
    exact = solve_assignment(scores, capacity)
    monkeypatch.setattr(solve_module, "_EXACT_FIRST_EDGES", 0)
    auction = solve_assignment(scores, capacity)
    assert (exact.method, auction.method) == ("exact", "auction")
    assert auction.objective == pytest.approx(exact.objective, rel=REL)
    for res in (exact, auction):
        check_certificate(res, (scores, capacity, NONE, NONE))
