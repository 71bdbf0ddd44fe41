"""Property tests for ``matching.solving.solve.solve_assignment``.

Every instance is checked for feasibility (capacity, forbidden, pinned, candidates,
integrality) and for optimality against an independent exact method: brute force on tiny
instances, ``scipy.optimize.milp`` on small ones and HiGHS ``linprog`` on a medium one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from matching.errors import Infeasible, InvalidProblem, MatchingError
from matching.solving import _auction, _freeze
from matching.solving import solve as solve_module
from matching.solving._exact import solve_exact
from matching.solving.solve import SolveResult, dual_bound, solve_assignment

REL = 1e-9
Pair = tuple[int, int]


@pytest.fixture(autouse=True, scope="module")
def _auction_only() -> Iterator[None]:
    """These tests are about the auction: keep small problems off the exact-first path
    (tests/matching/test_solve_exact_first.py covers that path)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(solve_module, "_EXACT_FIRST_REQUESTS", -1)
        yield


# --------------------------------------------------------------------------- helpers
def check_feasible(
    res: SolveResult,
    scores: sp.csr_array,
    capacity: NDArray[np.int64],
    pinned: Sequence[Pair] = (),
    forbidden: Sequence[Pair] = (),
    method: str = "auction",
) -> None:
    """Invariants every answer must satisfy, whatever the instance."""
    n_req, n_prov = scores.shape
    assert res.provider_of.dtype == np.int64
    assert res.provider_of.shape == (n_req,)
    assert np.all((res.provider_of >= -1) & (res.provider_of < n_prov))
    matched = np.flatnonzero(res.provider_of >= 0)
    load = np.bincount(res.provider_of[matched], minlength=n_prov)
    assert np.all(load <= capacity), "capacity exceeded"
    pins = dict(pinned)
    for i, j in pinned:
        assert res.provider_of[i] == j, f"pin ({i}, {j}) not honoured"
    dense = scores.toarray()
    for i in matched.tolist():
        j = int(res.provider_of[i])
        assert (i, j) not in set(forbidden), f"forbidden pair ({i}, {j}) used"
        assert dense[i, j] > 0 or pins.get(i) == j, f"({i}, {j}) is not a candidate"
    objective = sum(dense[i, res.provider_of[i]] for i in matched)
    assert res.objective == pytest.approx(objective, rel=1e-12, abs=1e-12)
    assert res.bound >= res.objective - 1e-9 * max(1.0, abs(res.bound))
    assert 0.0 <= res.gap <= REL
    assert res.method == method, "the auction should certify without the HiGHS fallback"


def brute_force(
    scores: sp.csr_array,
    capacity: NDArray[np.int64],
    pinned: list[Pair],
    forbidden: list[Pair],
) -> float | None:
    """Best objective by enumeration, or None when the pins are infeasible."""
    dense = scores.toarray()
    pins, bans = dict(pinned), set(forbidden)
    options = [
        [pins[i]]
        if i in pins
        else [-1] + [int(j) for j in np.flatnonzero(dense[i] > 0) if (i, int(j)) not in bans]
        for i in range(dense.shape[0])
    ]
    best = None
    for combo in itertools.product(*options):
        chosen = np.array([j for j in combo if j >= 0], dtype=np.int64)
        if np.any(np.bincount(chosen, minlength=dense.shape[1]) > capacity):
            continue
        total = sum(dense[i, j] for i, j in enumerate(combo) if j >= 0)
        best = total if best is None else max(best, total)
    return best


def milp_optimum(scores: sp.csr_array, capacity: NDArray[np.int64]) -> float:
    """Optimum of the integer program, solved by HiGHS branch and bound."""
    coo = scores.tocoo()
    n_req, n_prov = scores.shape
    if coo.nnz == 0:
        return 0.0
    edges = np.arange(coo.nnz)
    rows = sp.csr_array((np.ones(coo.nnz), (coo.row, edges)), shape=(n_req, coo.nnz))
    cols = sp.csr_array((np.ones(coo.nnz), (coo.col, edges)), shape=(n_prov, coo.nnz))
    res = milp(
        -coo.data,
        constraints=[LinearConstraint(rows, ub=1), LinearConstraint(cols, ub=capacity)],
        integrality=np.ones(coo.nnz, dtype=np.int64),
        bounds=Bounds(0, 1),
    )
    assert res.success
    return float(-res.fun)


def lp_optimum(scores: sp.csr_array, capacity: NDArray[np.int64]) -> float:
    """Optimum of the LP relaxation (integral: the matrix is totally unimodular)."""
    coo = scores.tocoo()
    n_req, n_prov = scores.shape
    edges = np.arange(coo.nnz)
    a_ub = sp.vstack(
        [
            sp.csr_array((np.ones(coo.nnz), (coo.row, edges)), shape=(n_req, coo.nnz)),
            sp.csr_array((np.ones(coo.nnz), (coo.col, edges)), shape=(n_prov, coo.nnz)),
        ]
    )
    b_ub = np.concatenate([np.ones(n_req), capacity])
    # HiGHS takes the sparse A_ub; scipy-stubs types it as dense only (as in matching/_lp.py)
    res = linprog(-coo.data, A_ub=a_ub, b_ub=b_ub, bounds=(0, 1), method="highs")  # type: ignore[call-overload]
    assert res.status == 0
    return float(-res.fun)


def random_instance(
    rng: np.random.Generator, n_req: int, n_prov: int, k: int, cap_high: int
) -> tuple[sp.csr_array, NDArray[np.int64]]:
    rows = np.repeat(np.arange(n_req), k)
    cols = rng.integers(0, n_prov, rows.size)
    keys = np.unique(rows * n_prov + cols)
    gains = rng.random(keys.size) + 0.01
    scores = sp.csr_array((gains, (keys // n_prov, keys % n_prov)), shape=(n_req, n_prov))
    return scores, rng.integers(0, cap_high + 1, n_prov)


# ------------------------------------------------------------------------- strategies
@st.composite
def instances(
    draw: st.DrawFn, max_req: int, max_prov: int, tied: bool = False
) -> tuple[sp.csr_array, NDArray[np.int64]]:
    """Sparse gain matrices; ``tied`` draws gains from a tiny set to force ties."""
    n_req = draw(st.integers(0, max_req))
    n_prov = draw(st.integers(0, max_prov))
    mask = draw(st.lists(st.booleans(), min_size=n_req * n_prov, max_size=n_req * n_prov))
    gain = st.sampled_from([0.5, 1.0, 2.0]) if tied else st.floats(0.01, 10.0)
    values = draw(st.lists(gain, min_size=n_req * n_prov, max_size=n_req * n_prov))
    dense = np.where(np.array(mask, bool), np.array(values, float), 0.0)
    capacity = np.array(draw(st.lists(st.integers(0, 3), min_size=n_prov, max_size=n_prov)))
    return sp.csr_array(dense.reshape(n_req, n_prov)), capacity.astype(np.int64)


@st.composite
def constrained(
    draw: st.DrawFn,
) -> tuple[sp.csr_array, NDArray[np.int64], list[Pair], list[Pair]]:
    """Tiny instances with random pins (possibly infeasible) and forbidden pairs."""
    scores, capacity = draw(instances(6, 4, tied=draw(st.booleans())))
    n_req, n_prov = scores.shape
    pair = st.tuples(st.integers(0, max(n_req - 1, 0)), st.integers(0, max(n_prov - 1, 0)))
    if n_req == 0 or n_prov == 0:
        return scores, capacity, [], []
    pins = draw(st.lists(pair, max_size=3, unique_by=lambda p: p[0]))
    bans = [p for p in draw(st.lists(pair, max_size=6)) if p not in pins]
    return scores, capacity, pins, bans


# ------------------------------------------------------------------ optimality checks
@settings(max_examples=300, deadline=None)
@given(constrained())
def test_matches_brute_force_on_tiny_instances(
    case: tuple[sp.csr_array, NDArray[np.int64], list[Pair], list[Pair]],
) -> None:
    scores, capacity, pins, bans = case
    best = brute_force(scores, capacity, pins, bans)
    if best is None:
        with pytest.raises(Infeasible):
            solve_assignment(scores, capacity, pinned=pins, forbidden=bans)
        return
    res = solve_assignment(scores, capacity, pinned=pins, forbidden=bans)
    check_feasible(res, scores, capacity, pins, bans)
    assert res.objective == pytest.approx(best, rel=REL, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(st.one_of(instances(30, 12), instances(30, 12, tied=True)))
def test_matches_milp_on_small_instances(case: tuple[sp.csr_array, NDArray[np.int64]]) -> None:
    scores, capacity = case
    res = solve_assignment(scores, capacity)
    check_feasible(res, scores, capacity)
    assert res.objective == pytest.approx(milp_optimum(scores, capacity), rel=REL, abs=1e-12)


@pytest.mark.parametrize(("n_req", "n_prov", "cap_high"), [(2000, 2000, 3), (2000, 400, 1)])
def test_matches_highs_lp_on_medium_instance(n_req: int, n_prov: int, cap_high: int) -> None:
    scores, capacity = random_instance(np.random.default_rng(7), n_req, n_prov, 20, cap_high)
    res = solve_assignment(scores, capacity)
    check_feasible(res, scores, capacity)
    assert res.objective == pytest.approx(lp_optimum(scores, capacity), rel=REL)


@settings(max_examples=100, deadline=None)
@given(st.one_of(instances(25, 10), instances(25, 10, tied=True)))
def test_eps_scaling_path_matches_milp(case: tuple[sp.csr_array, NDArray[np.int64]]) -> None:
    """Treat every first phase as a price war: eps jumps to the largest gain, then the
    scaling phases (releases, forward and reverse rounds) must bring back the optimum."""
    scores, capacity = case
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_auction, "_WAR", 0)
        res = solve_assignment(scores, capacity)
    check_feasible(res, scores, capacity)
    assert res.objective == pytest.approx(milp_optimum(scores, capacity), rel=REL, abs=1e-12)


def test_skewed_degrees() -> None:
    """One request with every provider as a candidate among requests with three each."""
    rng = np.random.default_rng(19)
    scores, capacity = random_instance(rng, 800, 600, 3, 1)
    dense = scores.toarray()
    dense[0] = rng.random(600) + 0.01
    scores = sp.csr_array(dense)
    res = solve_assignment(scores, capacity)
    check_feasible(res, scores, capacity)
    assert res.objective == pytest.approx(lp_optimum(scores, capacity), rel=REL)


def test_all_equal_gains_fill_every_slot() -> None:
    """Massive ties (a price war for a naive auction) still end optimal and certified."""
    scores, capacity = random_instance(np.random.default_rng(3), 600, 300, 8, 1)
    scores.data[:] = 1.0
    res = solve_assignment(scores, capacity)
    check_feasible(res, scores, capacity)
    assert res.objective == pytest.approx(lp_optimum(scores, capacity), rel=REL)


def test_highs_fallback_gives_the_same_optimum(monkeypatch: pytest.MonkeyPatch) -> None:
    scores, capacity = random_instance(np.random.default_rng(5), 300, 200, 10, 2)
    fast = solve_assignment(scores, capacity)
    monkeypatch.setattr(solve_module, "_WORK_PER_REQUEST", 0)
    monkeypatch.setattr(solve_module, "GAP_TOL", 0.0)  # the auction can never certify
    slow = solve_assignment(scores, capacity)
    assert (fast.method, slow.method) == ("auction", "lp")
    check_feasible(slow, scores, capacity, method="lp")
    assert slow.objective == pytest.approx(fast.objective, rel=REL)


def block_instance(
    rng: np.random.Generator, blocks: int, size: int
) -> tuple[sp.csr_array, NDArray[np.int64]]:
    """Block-diagonal instance: ``blocks`` independent components, some scarce."""
    parts = [
        random_instance(rng, size, size // 2, 6, int(rng.integers(1, 4))) for _ in range(blocks)
    ]
    return sp.csr_array(sp.block_diag([p[0] for p in parts])), np.concatenate([p[1] for p in parts])


@settings(max_examples=60, deadline=None)
@given(st.one_of(instances(20, 8), instances(20, 8, tied=True)))
def test_exact_component_solver_is_optimal_and_certified(
    case: tuple[sp.csr_array, NDArray[np.int64]],
) -> None:
    """LAPJVsp primal + least Bellman-Ford duals, used for components the auction hands off."""
    scores, capacity = case
    capacity = np.minimum(capacity, np.bincount(scores.indices, minlength=scores.shape[1]))
    provider_of, prices = solve_exact(scores, capacity)
    matched = np.flatnonzero(provider_of >= 0)
    assert np.all(np.bincount(provider_of[matched], minlength=scores.shape[1]) <= capacity)
    objective = float(scores.toarray()[matched, provider_of[matched]].sum())
    assert objective == pytest.approx(milp_optimum(scores, capacity), rel=REL, abs=1e-12)
    assert np.all(prices >= 0)
    assert dual_bound(scores, capacity, prices) - objective <= 1e-9 * max(1.0, objective)


def test_frozen_components_keep_the_optimum(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the auction to hand every still-bidding component to the exact solver."""
    monkeypatch.setattr(_freeze, "TAIL_START", 1)
    monkeypatch.setattr(_freeze, "TAIL_EVERY", 1)
    monkeypatch.setattr(_freeze, "TAIL_FRACTION", 1)
    calls: list[int] = []

    def counting(csr: sp.csr_array, capacity: NDArray[np.int64]) -> object:
        calls.append(csr.shape[0])
        return solve_exact(csr, capacity)

    monkeypatch.setattr(_freeze, "solve_exact", counting)
    scores, capacity = block_instance(np.random.default_rng(13), 12, 60)
    res = solve_assignment(scores, capacity)
    assert calls, "no component was handed to the exact solver"
    check_feasible(res, scores, capacity)
    assert res.objective == pytest.approx(lp_optimum(scores, capacity), rel=REL)


# ------------------------------------------------------------ invariance, determinism
@settings(max_examples=60, deadline=None)
@given(instances(12, 6), st.integers(0, 2**32 - 1))
def test_row_permutation_keeps_the_objective(
    case: tuple[sp.csr_array, NDArray[np.int64]], seed: int
) -> None:
    scores, capacity = case
    perm = np.random.default_rng(seed).permutation(scores.shape[0])
    base = solve_assignment(scores, capacity)
    moved = solve_assignment(sp.csr_array(scores.toarray()[perm]), capacity)
    assert moved.objective == pytest.approx(base.objective, rel=REL, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_row_permutation_keeps_the_pairs_when_gains_are_distinct(seed: int) -> None:
    """With continuous random gains the optimum is unique, so the pairs must match."""
    rng = np.random.default_rng(seed)
    scores, capacity = random_instance(rng, 400, 150, 8, 2)
    perm = rng.permutation(scores.shape[0])
    base = solve_assignment(scores, capacity)
    moved = solve_assignment(scores[perm], capacity)
    np.testing.assert_array_equal(moved.provider_of, base.provider_of[perm])


def test_same_input_same_output() -> None:
    scores, capacity = random_instance(np.random.default_rng(11), 500, 300, 10, 2)
    scores.data = np.round(scores.data, 1) + 0.1  # ties everywhere
    first = solve_assignment(scores, capacity)
    again = solve_assignment(scores.tocoo(), capacity.tolist())
    np.testing.assert_array_equal(first.provider_of, again.provider_of)


def test_provider_price_order_has_one_meaning_for_both_sort_paths() -> None:
    """The uint16 radix path and the lexsort path agree, ties in input order."""
    rng = np.random.default_rng(17)
    prov = rng.integers(0, 50, 2000)
    price = rng.integers(0, 20, 2000) / 4.0  # many exact ties
    radix = _auction._by_provider_then_price(prov, price, 50)
    lex = _auction._by_provider_then_price(prov, price, 1 << 20)
    np.testing.assert_array_equal(radix, lex)
    assert np.all(np.diff(prov[radix]) >= 0)


# ------------------------------------------------------------------------ edge cases
@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (3, 0), (4, 5)])
def test_empty_instances(shape: tuple[int, int]) -> None:
    scores = sp.csr_array(shape, dtype=float)
    res = solve_assignment(scores, np.ones(shape[1], dtype=np.int64))
    np.testing.assert_array_equal(res.provider_of, np.full(shape[0], -1))
    assert (res.objective, res.bound, res.gap) == (0.0, 0.0, 0.0)


def test_zero_capacity_leaves_everyone_unmatched() -> None:
    scores = sp.csr_array(np.array([[1.0, 2.0], [3.0, 0.0]]))
    res = solve_assignment(scores, np.zeros(2, dtype=np.int64))
    np.testing.assert_array_equal(res.provider_of, [-1, -1])
    assert res.bound == 0.0


def test_all_pinned() -> None:
    scores = sp.csr_array(np.array([[1.0, 2.0], [3.0, 0.0]]))
    res = solve_assignment(scores, np.array([1, 1]), pinned=[(0, 0), (1, 1)])
    np.testing.assert_array_equal(res.provider_of, [0, 1])
    assert res.objective == 1.0  # (1, 1) is not a candidate: forced at gain 0
    assert res.gap == 0.0


def test_pins_consume_capacity() -> None:
    scores = sp.csr_array(np.array([[1.0], [5.0]]))
    res = solve_assignment(scores, np.array([1]), pinned=[(0, 0)])
    np.testing.assert_array_equal(res.provider_of, [0, -1])


def test_forbidden_pair_is_avoided() -> None:
    scores = sp.csr_array(np.array([[5.0, 1.0]]))
    res = solve_assignment(scores, np.array([1, 1]), forbidden=[(0, 0)])
    np.testing.assert_array_equal(res.provider_of, [1])


@pytest.mark.parametrize(
    ("pinned", "forbidden", "message"),
    [
        ([(0, 0), (0, 1)], [], "request 0"),
        ([(0, 0), (1, 0)], [], "provider 0"),
        ([(0, 1)], [(0, 1)], "both pinned and forbidden"),
    ],
)
def test_infeasible_pins(pinned: list[Pair], forbidden: list[Pair], message: str) -> None:
    scores = sp.csr_array(np.array([[1.0, 2.0], [3.0, 4.0]]))
    with pytest.raises(Infeasible, match=message):
        solve_assignment(scores, np.array([1, 1]), pinned=pinned, forbidden=forbidden)


def _with_value(value: float) -> sp.coo_array:
    return sp.coo_array((np.array([1.0, value]), (np.array([0, 1]), np.array([0, 0]))), (2, 1))


@pytest.mark.parametrize(
    ("scores", "capacity", "pairs"),
    [
        (np.ones((2, 2)), [1, 1], {}),  # dense input
        (_with_value(0.0), [1], {}),  # explicit zero
        (_with_value(-1.0), [1], {}),
        (_with_value(np.nan), [1], {}),
        (_with_value(np.inf), [1], {}),
        (sp.coo_array((np.ones(2), (np.zeros(2, int), np.zeros(2, int))), (1, 1)), [1], {}),
        (sp.csr_array(np.ones((2, 2))), [1], {}),  # capacity shape
        (sp.csr_array(np.ones((2, 2))), [1, -1], {}),
        (sp.csr_array(np.ones((2, 2))), [1.5, 1.0], {}),
        (sp.csr_array(np.ones((2, 2))), [1, 1], {"pinned": [(2, 0)]}),
        (sp.csr_array(np.ones((2, 2))), [1, 1], {"forbidden": [(0, -1)]}),
        (sp.csr_array(np.ones((2, 2))), [1, 1], {"forbidden": [(0, 1, 2)]}),
        (sp.csr_array(np.ones((2, 2), dtype=complex)), [1, 1], {}),
    ],
)
def test_invalid_input(scores: object, capacity: list[float], pairs: dict[str, object]) -> None:
    with pytest.raises(InvalidProblem):
        solve_assignment(scores, np.array(capacity), **pairs)  # type: ignore[arg-type]


def test_errors_are_value_errors() -> None:
    assert issubclass(InvalidProblem, MatchingError)
    assert issubclass(Infeasible, MatchingError)
    assert issubclass(MatchingError, ValueError)
