"""``matching.rematch``: same optimum as a full re-solve with the same fixed pairs, cheaper."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matching
from matching import Exclusion, Problem, ProviderIn, RequestIn, Weights
from matching.encode import id_key
from tests.matching.strategies import assigned, problems, violations

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _full_resolve_objective(
    problem: Problem, fixed: tuple[tuple[object, object], ...], w: Weights
) -> float:
    """Optimum with ``fixed`` pinned, solved directly on *all* candidate pairs.

    Independent of the pipeline's pin handling: candidates come from ``rank`` without any
    pins (so nothing is removed for capacity the pins use), and the solver's own ``pinned``
    argument enforces the fixed pairs.
    """
    ranked = matching.rank(problem, w)
    req_ids = sorted(problem.requests.id, key=id_key)
    prov_ids = sorted(problem.providers.id, key=id_key)
    rpos = {r: i for i, r in enumerate(req_ids)}
    ppos = {p: j for j, p in enumerate(prov_ids)}
    entries = [(rpos[r], ppos[c.provider], c.score) for r, cands in ranked.items() for c in cands]
    rows, cols, vals = zip(*entries, strict=True) if entries else ((), (), ())
    scores = sp.csr_array(
        (np.array(vals, dtype=float), (rows, cols)), shape=(len(req_ids), len(prov_ids))
    )
    pv = problem.providers
    room = {pv.id[j]: max(int(pv.capacity[j] - pv.load[j]), 0) for j in range(len(pv))}
    capacity = np.array([room[p] for p in prov_ids], dtype=np.int64)
    pins = [(rpos[r], ppos[p]) for r, p in fixed]
    return matching.solve_assignment(scores, capacity, pinned=pins).objective


class TestEquivalence:
    @SETTINGS
    @given(problems(), st.data())
    def test_equals_full_resolve_with_the_same_fixed_pairs(
        self, problem: Problem, data: st.DataObject
    ) -> None:
        w = Weights(top_k=50, min_score=data.draw(st.sampled_from((0.0, 0.2))))
        first = matching.match(problem, w)
        declined = (
            data.draw(st.lists(st.sampled_from(first.pairs), unique=True)) if first.pairs else []
        )
        changed = (
            data.draw(st.lists(st.sampled_from(list(problem.requests.id)), unique=True))
            if len(problem.requests)
            else []
        )
        again = matching.rematch(first, problem, declined=declined, changed=changed)
        with_declines = problem.replace(
            exclusions=(*problem.exclusions, *(Exclusion(p, request=r) for r, p in declined))
        )
        fixed = tuple(a for a in again.pairs if assigned(again, a[0]).pinned)
        assert violations(with_declines, again, w) == []
        assert set(declined).isdisjoint(again.pairs)
        assert set(fixed) == {
            pair for pair in first.pairs if pair not in declined and pair[0] not in changed
        }
        expected = _full_resolve_objective(with_declines, fixed, w)
        assert math.isclose(again.objective, expected, rel_tol=1e-9, abs_tol=1e-9)
        full = matching.match(with_declines.replace(pinned=fixed), w)
        assert math.isclose(again.objective, full.objective, rel_tol=1e-12, abs_tol=1e-12)

    @SETTINGS
    @given(problems())
    def test_nothing_changed_keeps_everything(self, problem: Problem) -> None:
        first = matching.match(problem)
        again = matching.rematch(first, problem)
        assert set(first.pairs) <= set(again.pairs)
        assert again.objective >= first.objective - 1e-9


def _request(i: int, **kw: Any) -> RequestIn:
    base = RequestIn(
        id=f"r{i}",
        category="export",
        text="出口报关 customs",
        industry="C17",
        region="350582",
        enterprise=f"e{i}",
    )
    return dataclasses.replace(base, **kw)


def _provider(j: int, level: int, **kw: Any) -> ProviderIn:
    base = ProviderIn(
        id=f"p{j}",
        skills={"export": level},
        expertise="customs clearance 报关",
        capacity=1,
    )
    return dataclasses.replace(base, **kw)


class TestScenarios:
    def _problem(self) -> Problem:
        providers = [_provider(0, 3), _provider(1, 2), _provider(2, 1)]
        return Problem.build(requests=[_request(0), _request(1)], providers=providers)

    def test_decline_offers_the_runner_up(self) -> None:
        providers = [_provider(0, 3), _provider(1, 2, capacity=2), _provider(2, 1)]
        problem = Problem.build(
            requests=[_request(0, urgency=5), _request(1, urgency=1)], providers=providers
        )
        first = matching.match(problem)
        assert first.pairs == (("r0", "p0"), ("r1", "p1"))
        assert first.runners_up["r0"][0].provider == "p1"
        again = matching.rematch(first, problem, declined=[("r0", "p0")])
        assert again.pairs == (("r0", "p1"), ("r1", "p1"))
        assert assigned(again, "r1").pinned
        assert not assigned(again, "r0").pinned
        assert again.stats.open_requests == 1

    def test_paused_provider_reopens_its_pairs(self) -> None:
        problem = self._problem()
        first = matching.match(problem)
        busy = first.provider_of("r0")
        pv = problem.providers
        paused = pv.paused.copy()
        paused[list(pv.id).index(busy)] = True
        later = Problem(problem.requests, dataclasses.replace(pv, paused=paused))
        again = matching.rematch(first, later)
        assert again.provider_of("r0") not in (None, busy)

    def test_new_request_uses_remaining_capacity_only(self) -> None:
        problem = self._problem()
        first = matching.match(problem)
        requests = [_request(0), _request(1), _request(2)]
        grown = Problem.build(
            requests=requests, providers=[_provider(0, 3), _provider(1, 2), _provider(2, 1)]
        )
        again = matching.rematch(first, grown)
        assert set(first.pairs) <= set(again.pairs)
        assert again.stats.open_requests == 1
        assert again.provider_of("r2") is not None

    def test_explicit_fixed_pair_must_hold(self) -> None:
        problem = self._problem()
        first = matching.match(problem)
        with pytest.raises(matching.Infeasible):
            matching.rematch(first, problem, fixed=[("r0", "p0"), ("r1", "p0")])

    def test_unknown_fixed_id_is_invalid(self) -> None:
        first = matching.match(self._problem())
        with pytest.raises(matching.InvalidProblem, match="fixed"):
            matching.rematch(first, self._problem(), fixed=[("nope", "p0")])

    def test_weights_default_to_previous(self) -> None:
        w = Weights(min_score=0.05, fairness=0.1)
        first = matching.match(self._problem(), w)
        assert matching.rematch(first, self._problem()).weights == w


class TestReasons:
    def test_kept_and_pinned_pairs_say_which(self) -> None:
        providers = [_provider(0, 3, capacity=2), _provider(1, 2, capacity=2)]
        requests = [_request(0), _request(1), _request(2)]
        problem = Problem.build(requests=requests, providers=providers, pinned=[("r2", "p1")])
        first = matching.match(problem)
        again = matching.rematch(first, problem, changed=["r0"])
        lines = {a.request: a.explanation for a in again.assignments}
        assert lines["r2"].reason_en.startswith("pinned")
        assert lines["r2"].reason_zh.startswith("人工指定")
        assert lines["r1"].reason_en.startswith("kept")
        assert lines["r1"].reason_zh.startswith("保持原匹配")
        assert not lines["r0"].reason_en.startswith(("kept", "pinned"))

    def test_reuses_the_text_model(self) -> None:
        problem = Problem.build(requests=[_request(0)], providers=[_provider(0, 3)])
        first = matching.match(problem)
        again = matching.rematch(first, problem, changed=["r0"])
        assert first.text_cache is not None
        assert again.text_cache is not None
        assert again.text_cache.model is first.text_cache.model
