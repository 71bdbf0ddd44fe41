"""Team requests: one optimisation serves a request with ``wanted`` distinct providers.

Optimality is checked against ``scipy.optimize.milp`` on the same candidates (solver level
and end to end through :func:`matching.match`), the certificate against its definition,
and a declined member against a re-match that keeps the rest of the team.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import matching
from matching import ProviderIn, RequestIn, Weights
from matching.solving import team
from matching.solving.team import solve_team, team_bound
from tests.matching.strategies import assigned, problems, violations
from tests.matching.test_advice import instances, transport


def _groups(gains: sp.csr_array) -> NDArray[np.int64]:
    return np.arange(gains.nnz, dtype=np.int64)


@settings(max_examples=200, deadline=None)
@given(instances())
def test_team_lp_is_optimal_integral_and_certified(
    case: tuple[sp.csr_array, NDArray[np.int64], NDArray[np.int64]],
) -> None:
    gains, capacity, demand = case
    gains.sort_indices()
    if gains.nnz == 0:
        return
    chosen, prices, objective, bound = solve_team(
        gains, capacity, demand, _groups(gains), lp_only=True
    )
    best, _ = transport(gains, capacity, demand)
    assert objective == pytest.approx(best, rel=1e-9, abs=1e-9)
    rows = np.repeat(np.arange(gains.shape[0]), np.diff(gains.indptr))
    assert (np.bincount(rows[chosen], minlength=len(demand)) <= demand).all()
    assert (np.bincount(gains.indices[chosen], minlength=len(capacity)) <= capacity).all()
    assert bound == pytest.approx(team_bound(gains, capacity, demand, _groups(gains), prices))
    assert bound >= objective - 1e-9
    assert bound - objective <= 1e-7 * max(1.0, best)


@settings(max_examples=200, deadline=None)
@given(instances(), st.sampled_from([0, 4]))
def test_the_restricted_lp_is_optimal_and_certified_over_every_entry(
    case: tuple[sp.csr_array, NDArray[np.int64], NDArray[np.int64]], extra: int
) -> None:
    """The fallback when the assignment's certificate leaves a gap, forced here by an
    assignment that picks nothing at zero prices: a few entries per row (with ``extra`` 0,
    only as many as the row's demand, so the certificate usually fails at first and entries
    are added), certified against every entry and checked against milp."""
    gains, capacity, demand = case
    gains.sort_indices()
    if gains.nnz == 0:
        return

    def uncertified(problem: team._Problem) -> tuple[NDArray[np.bool_], NDArray[Any]]:
        return np.zeros(problem.csr.nnz, dtype=bool), np.zeros(problem.csr.shape[1])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(team, "_EXTRA", extra)
        patch.setattr(team, "_gadget", uncertified)
        chosen, prices, objective, bound = solve_team(gains, capacity, demand, _groups(gains))
    best, _ = transport(gains, capacity, demand)
    assert objective == pytest.approx(best, rel=1e-9, abs=1e-9)
    assert objective == pytest.approx(float(gains.data[chosen].sum()))
    rows = np.repeat(np.arange(gains.shape[0]), np.diff(gains.indptr))
    assert (np.bincount(rows[chosen], minlength=len(demand)) <= demand).all()
    assert (np.bincount(gains.indices[chosen], minlength=len(capacity)) <= capacity).all()
    assert bound == pytest.approx(team_bound(gains, capacity, demand, _groups(gains), prices))
    assert bound - objective <= 1e-7 * max(1.0, best)


@settings(max_examples=300, deadline=None)
@given(instances())
def test_the_assignment_rewrite_is_optimal_and_its_prices_certify_it(
    case: tuple[sp.csr_array, NDArray[np.int64], NDArray[np.int64]],
) -> None:
    """The team problem rewritten as an assignment (seat rows, one row and one unit column
    per team pair) and solved by the fast solver: feasible, optimal against milp, and its
    prices prove it through the team certificate."""
    gains, capacity, demand = case
    gains.sort_indices()
    if gains.nnz == 0:
        return
    picked, prices = team._gadget(team._Problem.of(gains, capacity, demand, _groups(gains)))
    best, _ = transport(gains, capacity, demand)
    rows = np.repeat(np.arange(gains.shape[0]), np.diff(gains.indptr))
    assert (np.bincount(rows[picked], minlength=len(demand)) <= demand).all()
    assert (np.bincount(gains.indices[picked], minlength=len(capacity)) <= capacity).all()
    objective = float(gains.data[picked].sum())
    assert objective == pytest.approx(best, rel=1e-9, abs=1e-9)
    bound = team_bound(gains, capacity, demand, _groups(gains), prices)
    assert bound - objective <= 1e-7 * max(1.0, best)


@settings(max_examples=100, deadline=None)
@given(instances(), st.integers(0, 2**32 - 1))
def test_any_prices_bound_the_optimum(
    case: tuple[sp.csr_array, NDArray[np.int64], NDArray[np.int64]], seed: int
) -> None:
    """Weak duality of the team certificate, whatever the prices."""
    gains, capacity, demand = case
    prices = np.random.default_rng(seed).random(gains.shape[1]) * 5
    best, _ = transport(gains, capacity, demand)
    assert team_bound(gains, capacity, demand, _groups(gains), prices) >= best - 1e-9


def test_slot_columns_of_one_provider_serve_a_request_once() -> None:
    """Under fairness a provider is split into slot columns: a group keeps them exclusive."""
    gains = sp.csr_array(np.array([[5.0, 4.0, 1.0]]))  # columns 0, 1: two slots of one provider
    chosen, _, objective, _ = solve_team(
        gains, np.array([1, 1, 1]), np.array([2]), np.array([0, 0, 1])
    )
    assert objective == pytest.approx(6.0)
    assert chosen.tolist() == [True, False, True]


def _with_wanted(problem: matching.Problem, wanted: list[int]) -> matching.Problem:
    table = problem.requests
    values = {name: getattr(table, name) for name in table.__dataclass_fields__}
    return matching.Problem(
        requests=matching.RequestTable(**(values | {"wanted": np.array(wanted, np.int64)})),
        providers=problem.providers,
        exclusions=problem.exclusions,
        pinned=(),
    )


def _milp_of_candidates(problem: matching.Problem, weights: Weights) -> float:
    """Optimum over the same candidates (every one kept: top_k covers all providers)."""
    ranked = matching.rank(problem, weights)
    req_ids, prov_ids = list(ranked), list(problem.providers.id)
    rows, cols, vals = [], [], []
    for i, request in enumerate(req_ids):
        for c in ranked[request]:
            rows.append(i)
            cols.append(prov_ids.index(c.provider))
            vals.append(c.score)
    if not vals:
        return 0.0
    gains = sp.csr_array((vals, (rows, cols)), shape=(len(req_ids), len(prov_ids)))
    free = np.maximum(problem.providers.capacity - problem.providers.load, 0)
    position = {r: k for k, r in enumerate(problem.requests.id)}
    demand = np.array([problem.requests.wanted[position[r]] for r in req_ids])
    return transport(gains, free.astype(np.int64), demand.astype(np.int64))[0]


@settings(max_examples=80, deadline=None)
@given(problems(), st.data())
def test_match_serves_teams_optimally_with_distinct_providers(
    problem: matching.Problem, data: st.DataObject
) -> None:
    n = len(problem.requests)
    wanted = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    problem = _with_wanted(problem, wanted)
    weights = Weights(top_k=50)
    result = matching.match(problem, weights)
    assert violations(problem, result, weights) == []
    per_request = Counter(a.request for a in result.assignments)
    assert len(set(result.pairs)) == len(result.pairs)  # distinct providers per request
    want = dict(zip(problem.requests.id, wanted, strict=True))
    assert all(per_request[r] <= want[r] for r in per_request)
    assert result.short == {r: want[r] - per_request[r] for r in want if per_request[r] < want[r]}
    assert result.objective == pytest.approx(_milp_of_candidates(problem, weights), abs=1e-7)
    assert result.stats.gap <= 1e-9


def _restructuring() -> matching.Problem:
    requests = [
        RequestIn(
            id="r1",
            category="legal_ip",
            text="重组 债务 专利",
            industry="C17",
            region="350582",
            enterprise="e1",
            urgency=5,
            wanted=2,
        ),
        RequestIn(
            id="r2",
            category="legal_ip",
            text="商标 侵权",
            industry="C17",
            region="350582",
            enterprise="e2",
            urgency=2,
        ),
    ]
    providers = [
        ProviderIn(
            id=f"p{j}",
            skills={"legal_ip": 3 - j % 2},
            expertise="专利 商标 重组",
            regions=("35",),
            capacity=1,
        )
        for j in range(1, 4)
    ]
    return matching.Problem.build(requests=requests, providers=providers)


def test_a_team_request_gets_two_distinct_providers() -> None:
    result = matching.match(_restructuring())
    team = result.team("r1")
    assert len(team) == 2
    assert len({a.provider for a in team}) == 2
    assert result.provider_of("r2") is not None
    assert result.short == {}
    assert all(a.provider not in {t.provider for t in team} for a in result.team("r2"))


def test_declining_one_member_rematches_only_that_seat() -> None:
    problem = _restructuring()
    first = matching.match(problem)
    leaving, staying = (a.provider for a in first.team("r1"))
    again = matching.rematch(first, problem, declined=[("r1", leaving)])
    members = {a.provider: a for a in again.team("r1")}
    assert staying in members
    assert members[staying].pinned  # kept, not re-decided
    assert leaving not in members
    assert again.assignment("r2") == first.assignment("r2") or assigned(again, "r2").pinned


def test_single_requests_keep_the_fast_path() -> None:
    problem = _with_wanted(_restructuring(), [1, 1])
    result = matching.match(problem)
    assert result.stats.seconds["solve"] >= 0
    assert all(len(result.team(r)) <= 1 for r in ("r1", "r2"))


def test_more_pins_than_wanted_is_refused() -> None:
    problem = _restructuring()
    pinned = problem.replace(pinned=[("r2", "p1"), ("r2", "p2")])
    with pytest.raises(matching.InvalidProblem, match="r2"):
        matching.match(pinned)


def test_a_team_may_carry_pins_up_to_its_size() -> None:
    problem = _restructuring().replace(pinned=[("r1", "p1")])
    result = matching.match(problem)
    members = {a.provider: a.pinned for a in result.team("r1")}
    assert members["p1"] is True
    assert len(members) == 2
