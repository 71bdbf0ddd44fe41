"""Recruitment advice is exact: the reported value of one more slot equals the rise of the
optimum when the instance is re-solved with that slot (``scipy.optimize.milp``)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp

import matching
from matching import ProviderIn, RequestIn, Weights
from matching.explaining.advice import potentials, slot_gain
from tests.matching.strategies import problems

REL = 1e-7


def transport(
    gains: sp.csr_array,
    capacity: NDArray[np.int64],
    demand: NDArray[np.int64],
    same: list[tuple[int, int]] | None = None,
) -> tuple[float, NDArray[np.bool_]]:
    """Optimum and chosen entries of ``max g.x``, rows <= demand, columns <= capacity,
    ``x`` binary; ``same`` lists entry pairs that may not both be chosen (one provider's
    two columns for one request)."""
    coo = gains.tocoo()
    n_rows, n_cols = gains.shape
    if coo.nnz == 0:
        return 0.0, np.zeros(0, dtype=bool)
    edges = np.arange(coo.nnz)
    cons = [
        LinearConstraint(
            sp.csr_array((np.ones(coo.nnz), (coo.row, edges)), shape=(n_rows, coo.nnz)), ub=demand
        ),
        LinearConstraint(
            sp.csr_array((np.ones(coo.nnz), (coo.col, edges)), shape=(n_cols, coo.nnz)), ub=capacity
        ),
    ]
    if same:
        a = np.zeros((len(same), coo.nnz))
        for k, (e, f) in enumerate(same):
            a[k, e] = a[k, f] = 1
        cons.append(LinearConstraint(a, ub=1))
    res = milp(
        -coo.data,
        constraints=cons,
        integrality=np.ones(coo.nnz, dtype=np.int64),
        bounds=Bounds(0, 1),
    )
    assert res.success
    return float(-res.fun), res.x > 0.5


@st.composite
def instances(draw: st.DrawFn) -> tuple[sp.csr_array, NDArray[np.int64], NDArray[np.int64]]:
    n_rows, n_cols = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    cells = n_rows * n_cols
    mask = np.array(draw(st.lists(st.booleans(), min_size=cells, max_size=cells)), bool)
    tied = draw(st.booleans())
    value = st.sampled_from([1.0, 2.0, 3.0]) if tied else st.floats(0.05, 10.0)
    values = np.array(draw(st.lists(value, min_size=cells, max_size=cells)))
    dense = np.where(mask, values, 0.0).reshape(n_rows, n_cols)
    capacity = np.array(draw(st.lists(st.integers(0, 3), min_size=n_cols, max_size=n_cols)))
    demand = np.array(draw(st.lists(st.integers(1, 3), min_size=n_rows, max_size=n_rows)))
    return sp.csr_array(dense), capacity.astype(np.int64), demand.astype(np.int64)


@settings(max_examples=150, deadline=None)
@given(instances())
def test_one_more_slot_of_a_provider_is_worth_its_least_price(
    case: tuple[sp.csr_array, NDArray[np.int64], NDArray[np.int64]],
) -> None:
    """Raising capacity[j] by one raises the optimum by max(0, potential[i] + g_ij) over
    requests i that j does not serve yet — whichever optimal assignment we started from."""
    gains, capacity, demand = case
    gains.sort_indices()
    base, chosen = transport(gains, capacity, demand)
    potential, exact = potentials(gains, demand, chosen)
    assert exact
    rows = np.repeat(np.arange(gains.shape[0]), np.diff(gains.indptr))
    value = slot_gain(potential[rows], gains.data)
    for j in range(gains.shape[1]):
        mine = (gains.indices == j) & ~chosen
        predicted = float(value[mine].max()) if mine.any() else 0.0
        more = capacity.copy()
        more[j] += 1
        again, _ = transport(gains, more, demand)
        assert predicted == pytest.approx(again - base, rel=REL, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(instances(), st.data())
def test_one_more_slot_for_a_cell_matches_a_resolve_with_that_slot(
    case: tuple[sp.csr_array, NDArray[np.int64], NDArray[np.int64]], data: st.DataObject
) -> None:
    """A new slot of provider j that only the requests of one cell may take (what the
    advice reports per category × region) is worth max over the cell's other requests."""
    gains, capacity, demand = case
    gains.sort_indices()
    n_rows, n_cols = gains.shape
    base, chosen = transport(gains, capacity, demand)
    potential, _ = potentials(gains, demand, chosen)
    j = data.draw(st.integers(0, n_cols - 1))
    cell = data.draw(st.sets(st.integers(0, n_rows - 1), min_size=1))
    dense = gains.toarray()
    rows = np.repeat(np.arange(n_rows), np.diff(gains.indptr))
    held = {int(r) for r in rows[chosen & (gains.indices == j)]}
    value = slot_gain(potential[rows], gains.data)
    mine = (gains.indices == j) & ~chosen
    whole = float(value[mine].max()) if mine.any() else 0.0  # one more slot of j for anyone
    # a cell request holding j may move to the new slot and free j: worth a whole slot
    predicted = max(
        [0.0]
        + [potential[i] + dense[i, j] for i in cell if dense[i, j] > 0 and i not in held]
        + [whole for i in cell if i in held]
    )
    extra = np.zeros((n_rows, 1))
    for i in cell:
        extra[i, 0] = dense[i, j]
    wider = sp.csr_array(np.hstack([dense, extra]))
    # one provider serves one request once: its old and new column are exclusive per row
    index = {(int(r), int(c)): k for k, (r, c) in enumerate(zip(*wider.nonzero(), strict=True))}
    same = [
        (index[i, j], index[i, n_cols]) for i in cell if (i, j) in index and (i, n_cols) in index
    ]
    again, _ = transport(wider, np.r_[capacity, 1], demand, same)
    assert predicted == pytest.approx(again - base, rel=REL, abs=1e-9)


def _capacity_plus_one(problem: matching.Problem, provider: object) -> matching.Problem:
    providers = problem.providers
    capacity = providers.capacity.copy()
    capacity[list(providers.id).index(provider)] += 1
    return matching.Problem(
        requests=problem.requests,
        providers=matching.ProviderTable(
            **{
                **{name: getattr(providers, name) for name in providers.__dataclass_fields__},
                "capacity": capacity,
            }
        ),
        exclusions=problem.exclusions,
        pinned=problem.pinned,
    )


@settings(max_examples=60, deadline=None)
@given(problems())
def test_match_advice_matches_rematching_with_the_extra_slot(problem: matching.Problem) -> None:
    """End to end: for each cell's best provider, giving it one more slot raises the
    optimum of a full match by at least the reported marginal score (at most, too, when
    only the cell's requests could use it — which a full re-match does not restrict, so
    the check is the lower bound plus the exact solver-level tests above)."""
    weights = Weights(top_k=50)
    result = matching.match(problem, weights)
    for advice in result.advice:
        assert advice.exact
        assert advice.slots_needed >= len(advice.requests) > 0
        if advice.marginal_score is None:
            assert advice.with_candidates == 0
            continue
        again = matching.match(_capacity_plus_one(problem, advice.provider), weights)
        rise = again.objective - result.objective
        assert rise >= advice.marginal_score - 1e-7 * max(1.0, result.objective)


def test_advice_names_the_cell_the_requests_and_the_gain() -> None:
    """Three legal requests in 4101 compete for one expert with one slot: the advice says
    one more slot there serves the best unmatched one, and by how much."""
    requests = [
        RequestIn(
            id=f"r{i}",
            category="legal_ip",
            text="专利 侵权",
            industry="C17",
            region="410102",
            enterprise=f"e{i}",
            urgency=3,
        )
        for i in range(3)
    ]
    expert = ProviderIn(
        id="p1", skills={"legal_ip": 3}, expertise="专利", regions=("41",), capacity=1
    )
    problem = matching.Problem.build(requests=requests, providers=[expert])
    result = matching.match(problem)
    (advice,) = result.advice
    assert (advice.category, advice.region) == ("legal_ip", "4101")
    assert advice.provider == "p1"
    assert len(advice.requests) == 2
    assert advice.with_candidates == 2
    assert advice.slots_needed == 2
    assert advice.providers_needed == 2
    served = {a.request for a in result.assignments}
    assert set(advice.requests).isdisjoint(served)
    again = matching.match(_capacity_plus_one(problem, "p1"))
    assert advice.marginal_score == pytest.approx(again.objective - result.objective)
    assert "would serve 2 more requests" in advice.message_en


def test_cells_nobody_can_serve_ask_for_a_recruit() -> None:
    request = RequestIn(
        id="r1", category="export", text="出口", industry="C17", region="350582", enterprise="e1"
    )
    result = matching.match(matching.Problem.build(requests=[request], providers=[]))
    (advice,) = result.advice
    assert advice.marginal_score is None
    assert advice.provider is None
    assert advice.requests == ("r1",)
    assert advice.with_candidates == 0
