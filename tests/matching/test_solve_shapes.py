"""The hard shapes of ``bench/shapes.py``, small enough for an independent exact method.

Families: large capacities beside small ones, chains (request i -> providers i, i+1),
ties (all-equal or few distinct gains with binding capacity), dense candidates, and pins
plus forbidden pairs mixed in. Each answer is compared with ``scipy.optimize.milp`` and its
dual certificate is recomputed here from ``SolveResult.prices``, independently of the
solver's own bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp

from matching.solving import _auction, _price_update
from matching.solving import solve as solve_module
from matching.solving._market import Market
from matching.solving.solve import SolveResult, solve_assignment

REL = 1e-9
Ints = NDArray[np.int64]
Case = tuple[sp.csr_array, Ints, Ints, Ints]  # scores, capacity, pinned, forbidden


@pytest.fixture(autouse=True, scope="module")
def _auction_only() -> Iterator[None]:
    """These tests are about the auction: keep small problems off the exact-first path
    (tests/matching/test_solve_exact_first.py covers that path)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(solve_module, "_EXACT_FIRST_REQUESTS", -1)
        yield


def milp_optimum(scores: sp.csr_array, capacity: Ints, pinned: Ints, forbidden: Ints) -> float:
    """Optimum by HiGHS branch and bound, pins forced to 1, forbidden pairs left out."""
    n_prov = scores.shape[1]
    dense = scores.toarray()
    allowed = dense > 0
    allowed[forbidden[:, 0], forbidden[:, 1]] = False
    allowed[pinned[:, 0], pinned[:, 1]] = True
    rows, cols = np.nonzero(allowed)
    if rows.size == 0:
        return 0.0
    edges = np.arange(rows.size)
    lower = np.zeros(rows.size)
    lower[np.isin(rows * n_prov + cols, pinned[:, 0] * n_prov + pinned[:, 1])] = 1.0
    res = milp(
        -dense[rows, cols],
        constraints=[
            LinearConstraint(sp.csr_array((np.ones(rows.size), (rows, edges))), ub=1),
            LinearConstraint(
                sp.csr_array((np.ones(rows.size), (cols, edges)), shape=(n_prov, rows.size)),
                ub=capacity,
            ),
        ],
        integrality=np.ones(rows.size, dtype=np.int64),
        bounds=Bounds(lower, 1),
    )
    assert res.success
    return float(-res.fun)


def check_certificate(res: SolveResult, case: Case) -> None:
    """Weak duality from the returned prices alone: a proof the answer is optimal to 1e-9."""
    scores, capacity, pinned, forbidden = case
    n_prov = scores.shape[1]
    dense = scores.toarray()
    assert res.prices.shape == (n_prov,)
    assert np.all(res.prices >= 0)
    open_ = dense.copy()
    open_[forbidden[:, 0], forbidden[:, 1]] = 0.0
    open_[pinned[:, 0]] = 0.0
    net = np.where(open_ > 0, open_ - res.prices, 0.0)
    residual = capacity - np.bincount(pinned[:, 1], minlength=n_prov)
    bound = np.maximum(net.max(axis=1, initial=0.0), 0.0).sum() + residual @ res.prices
    bound += dense[pinned[:, 0], pinned[:, 1]].sum()
    matched = np.flatnonzero(res.provider_of >= 0)
    objective = dense[matched, res.provider_of[matched]].sum()
    assert objective == pytest.approx(res.objective, rel=1e-12, abs=1e-12)
    assert bound - objective <= REL * max(1.0, abs(bound)), "certificate does not close"


def check(case: Case) -> SolveResult:
    scores, capacity, pinned, forbidden = case
    res = solve_assignment(scores, capacity, pinned=pinned, forbidden=forbidden)
    load = np.bincount(res.provider_of[res.provider_of >= 0], minlength=scores.shape[1])
    assert np.all(load <= capacity)
    assert np.all(res.provider_of[pinned[:, 0]] == pinned[:, 1])
    used = set(zip(np.flatnonzero(res.provider_of >= 0).tolist(),
                   res.provider_of[res.provider_of >= 0].tolist(), strict=True))  # fmt: skip
    assert not used & set(map(tuple, forbidden.tolist()))
    check_certificate(res, case)
    assert res.objective == pytest.approx(milp_optimum(*case), rel=REL, abs=1e-12)
    assert res.method == "auction"
    return res


NONE = np.empty((0, 2), dtype=np.int64)


def _gains(draw: st.DrawFn, size: int, kind: str) -> NDArray[np.float64]:
    if kind == "equal":
        return np.ones(size)
    if kind == "few":
        return np.array(draw(st.lists(st.sampled_from([0.3, 0.6, 0.9]), min_size=size,
                                      max_size=size)))  # fmt: skip
    return np.array(draw(st.lists(st.floats(0.01, 10.0), min_size=size, max_size=size)))


gain_kinds = st.sampled_from(["random", "equal", "few"])


@st.composite
def big_capacity(draw: st.DrawFn) -> Case:
    """A few providers with capacities up to 60 beside providers of capacity 0-2."""
    n_req, n_prov = draw(st.integers(1, 40)), draw(st.integers(1, 8))
    mask = np.array(draw(st.lists(st.booleans(), min_size=n_req * n_prov,
                                  max_size=n_req * n_prov))).reshape(n_req, n_prov)  # fmt: skip
    rows, cols = np.nonzero(mask)
    gains = _gains(draw, rows.size, draw(gain_kinds))
    capacity = np.array(draw(st.lists(st.integers(0, 2), min_size=n_prov, max_size=n_prov)))
    big = draw(st.lists(st.integers(0, n_prov - 1), max_size=2, unique=True))
    capacity[big] = draw(st.integers(5, 60))
    scores = sp.csr_array((gains, (rows, cols)), shape=(n_req, n_prov))
    return scores, capacity.astype(np.int64), NONE, NONE


@st.composite
def chains(draw: st.DrawFn) -> Case:
    """Request i -> providers i and i+1, capacity 1; the last request has one provider."""
    n = draw(st.integers(1, 30))
    i = np.arange(n)
    rows, cols = np.concatenate([i, i[:-1]]), np.concatenate([i, i[:-1] + 1])
    gains = _gains(draw, rows.size, draw(gain_kinds))
    scores = sp.csr_array((gains, (rows, cols)), shape=(n, n))
    return scores, np.ones(n, dtype=np.int64), NONE, NONE


@st.composite
def tied_binding(draw: st.DrawFn) -> Case:
    """Equal or three distinct gains, total capacity at most the number of requests."""
    n_req, n_prov = draw(st.integers(1, 30)), draw(st.integers(1, 12))
    k = draw(st.integers(1, n_prov))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = np.repeat(np.arange(n_req), k)
    cols = np.concatenate([rng.choice(n_prov, k, replace=False) for _ in range(n_req)])
    gains = _gains(draw, rows.size, draw(st.sampled_from(["equal", "few"])))
    capacity = rng.multinomial(draw(st.integers(0, n_req)), np.full(n_prov, 1 / n_prov))
    scores = sp.csr_array((gains, (rows, cols)), shape=(n_req, n_prov))
    return scores, capacity.astype(np.int64), NONE, NONE


@st.composite
def dense_candidates(draw: st.DrawFn) -> Case:
    """Every request a candidate of (almost) every provider, capacity 1-3."""
    n_req, n_prov = draw(st.integers(1, 20)), draw(st.integers(1, 12))
    gains = _gains(draw, n_req * n_prov, draw(gain_kinds)).reshape(n_req, n_prov)
    capacity = np.array(draw(st.lists(st.integers(1, 3), min_size=n_prov, max_size=n_prov)))
    return sp.csr_array(gains), capacity.astype(np.int64), NONE, NONE


@st.composite
def with_pins_and_bans(draw: st.DrawFn, base: st.SearchStrategy[Case]) -> Case:
    """Any family plus feasible pins (one per request, within capacity) and bans."""
    scores, capacity, _, _ = draw(base)
    n_req, n_prov = scores.shape
    pairs = st.tuples(st.integers(0, n_req - 1), st.integers(0, n_prov - 1))
    wanted = draw(st.lists(pairs, max_size=4, unique_by=lambda p: p[0]))
    load = np.zeros(n_prov, dtype=np.int64)
    pins = []
    for i, j in wanted:
        if load[j] < capacity[j]:
            pins.append((i, j))
            load[j] += 1
    bans = [p for p in draw(st.lists(pairs, max_size=8, unique=True)) if p not in pins]
    return scores, capacity, _pair_array(pins), _pair_array(bans)


def _pair_array(pairs: list[tuple[int, int]]) -> Ints:
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


families = st.one_of(big_capacity(), chains(), tied_binding(), dense_candidates())


@settings(max_examples=60, deadline=None)
@given(families)
def test_every_family_matches_milp_and_certifies(case: Case) -> None:
    check(case)


@settings(max_examples=40, deadline=None)
@given(with_pins_and_bans(families))
def test_pins_and_forbidden_pairs_mixed_in(case: Case) -> None:
    check(case)


@settings(max_examples=30, deadline=None)
@given(families)
def test_price_updates_keep_eps_complementary_slackness(case: Case) -> None:
    """After every global price update, each holder is within eps of its best option.

    (Best among the *other* providers and its dummy: a holder may pay more than its own
    provider's entry price, as in :mod:`matching.solving._auction`'s statement of eps-CS.)

    This is the invariant the update's proof rests on (see ``matching.solving._price_update``):
    checked here on the auction's own state, not only through the final certificate.
    """
    seen: list[int] = []
    real = _price_update.update_prices

    def checked(mk: Market, eps: float, stuck: Ints | None = None) -> int:
        free = np.flatnonzero(mk.slot_holder < 0)
        before = mk.slot_price[free].copy()
        spent = real(mk, eps, stuck)
        seen.append(spent)
        assert np.all(mk.slot_price[free] == before), "a free slot's price moved"
        held = np.flatnonzero(mk.owner >= 0)
        if held.size:
            dense = mk.csr.toarray()[held]
            value = np.where(dense > 0, dense - mk.entry[:-1], -np.inf)
            value[np.arange(held.size), mk.slot_prov[mk.owner[held]]] = -np.inf  # other l
            best = np.maximum(value.max(axis=1), 0.0)
            profit = mk.own_gain[held] - mk.slot_price[mk.owner[held]]
            slack = 1e-9 * max(1.0, float(mk.csr.data.max()))
            assert np.all(profit >= best - eps - slack), "eps-CS broken by a price update"
        return spent

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_auction, "update_prices", checked)
        check(case)


def test_price_war_instance_needs_no_lp() -> None:
    """Three gain values, binding capacity, 10 candidates: a war of eps-sized bids that
    took 50 s before price updates augmented the stuck persons' paths directly."""
    rng = np.random.default_rng(7)
    n_req, n_prov, k = 2000, 2000, 10
    rows = np.repeat(np.arange(n_req), k)
    cols = rng.integers(0, n_prov, rows.size)
    keys = np.unique(rows * n_prov + cols)
    gains = np.array([0.3, 0.6, 0.9])[rng.integers(0, 3, keys.size)]
    scores = sp.csr_array((gains, (keys // n_prov, keys % n_prov)), shape=(n_req, n_prov))
    capacity = rng.multinomial(n_req, np.full(n_prov, 1 / n_prov)).astype(np.int64)
    calls: list[int] = []
    real = _price_update.update_prices

    def counted(mk: Market, eps: float, stuck: Ints | None = None) -> int:
        calls.append(1)
        return real(mk, eps, stuck)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_auction, "update_prices", counted)
        res = solve_assignment(scores, capacity)
    assert res.method == "auction"
    assert calls, "no global price update ran"
    check_certificate(res, (scores, capacity, NONE, NONE))
