"""Properties of ``matching.match`` on generated problems: feasibility, pins, invariance."""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matching
from matching import Problem, ProviderIn, RequestIn, Weights
from tests.matching.strategies import assigned, problems, violations, weights

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _shuffled(problem: Problem, seed: int) -> Problem:
    """The same problem with requests, providers, exclusions and pins in another order."""
    rng = np.random.default_rng(seed)
    r = rng.permutation(len(problem.requests))
    p = rng.permutation(len(problem.providers))
    ex = list(problem.exclusions)
    random.Random(seed).shuffle(ex)
    pins = list(problem.pinned)[::-1]
    return Problem(problem.requests.take(r), problem.providers.take(p), tuple(ex), tuple(pins))


def _pin_some(problem: Problem, data: st.DataObject) -> Problem:
    """Pin a random subset of a first solution's pairs (they are valid by construction)."""
    first = matching.match(problem, Weights(min_score=0.0))
    pins = data.draw(st.lists(st.sampled_from(first.pairs), unique=True)) if first.pairs else []
    return problem.replace(pinned=pins)


class TestHardRules:
    @SETTINGS
    @given(problems(), weights())
    def test_never_broken(self, problem: Problem, w: Weights) -> None:
        result = matching.match(problem, w)
        assert violations(problem, result, w) == []

    @SETTINGS
    @given(problems(), st.data())
    def test_pins_kept_and_rules_hold(self, problem: Problem, data: st.DataObject) -> None:
        pinned = _pin_some(problem, data)
        w = Weights(min_score=0.0, top_k=2)
        result = matching.match(pinned, w)
        assert violations(pinned, result, w) == []
        assert all(assigned(result, r).pinned for r, _ in pinned.pinned)

    @SETTINGS
    @given(problems(), weights())
    def test_every_open_request_is_matched_or_explained(self, problem: Problem, w: Weights) -> None:
        result = matching.match(problem, w)
        matched = {a.request for a in result.assignments}
        unmatched = {u.request for u in result.unmatched}
        assert matched.isdisjoint(unmatched)
        assert matched | unmatched == set(problem.requests.id)
        assert result.stats.matched + result.stats.unmatched == len(problem.requests)


class TestInvariance:
    @SETTINGS
    @given(problems(), weights(), st.integers(0, 2**32 - 1))
    def test_input_order_does_not_matter(self, problem: Problem, w: Weights, seed: int) -> None:
        a = matching.match(problem, w)
        b = matching.match(_shuffled(problem, seed), w)
        assert a.pairs == b.pairs
        assert a.unmatched == b.unmatched
        assert a.runners_up == b.runners_up
        assert math.isclose(a.objective, b.objective, rel_tol=1e-12, abs_tol=1e-12)

    @SETTINGS
    @given(problems(), weights())
    def test_deterministic(self, problem: Problem, w: Weights) -> None:
        a, b = matching.match(problem, w), matching.match(problem, w)
        assert a.assignments == b.assignments
        assert a.unmatched == b.unmatched
        assert a.runners_up == b.runners_up


class TestScores:
    @SETTINGS
    @given(problems(), weights())
    def test_explanations_sum_to_score(self, problem: Problem, w: Weights) -> None:
        result = matching.match(problem, w)
        for a in result.assignments:
            e = a.explanation
            assert set(e.features) == set(matching.FEATURES)
            assert all(0.0 <= v <= 1.0 for v in e.features.values())
            assert math.isclose(sum(e.contributions.values()), a.score, rel_tol=1e-9, abs_tol=1e-12)
            assert math.isclose(a.gain, a.score * e.slot_multiplier, rel_tol=1e-12)
            assert e.priority >= 1.0
            assert 0.0 < e.slot_multiplier <= 1.0
            assert e.reason_zh
            assert e.reason_en

    @SETTINGS
    @given(problems(), weights())
    def test_objective_and_gap(self, problem: Problem, w: Weights) -> None:
        result = matching.match(problem, w)
        total = sum(a.gain for a in result.assignments)
        assert math.isclose(result.objective, total, rel_tol=1e-9, abs_tol=1e-12)
        assert result.stats.bound >= result.objective - 1e-9
        assert result.stats.gap <= 1e-6

    @SETTINGS
    @given(problems(), weights())
    def test_runners_up_exclude_the_chosen_and_are_sorted(
        self, problem: Problem, w: Weights
    ) -> None:
        result = matching.match(problem, w)
        for request, runners in result.runners_up.items():
            assert len(runners) <= w.runners_up
            assert result.provider_of(request) not in {c.provider for c in runners}
            fits = [c.fit for c in runners]
            assert fits == sorted(fits, reverse=True)


def _request(i: int, urgency: int = 3, **kw: Any) -> RequestIn:
    base = RequestIn(
        id=f"r{i}",
        category="legal_ip",
        text="专利",
        industry="C17",
        region="350582",
        enterprise=f"e{i}",
        urgency=urgency,
    )
    return dataclasses.replace(base, **kw)


def _provider(j: int, **kw: Any) -> ProviderIn:
    base = ProviderIn(
        id=f"p{j}",
        skills={"legal_ip": 3},
        expertise="patent 专利",
        regions=("35",),
        capacity=1,
    )
    return dataclasses.replace(base, **kw)


class TestEdgeCases:
    def test_empty_problem(self) -> None:
        result = matching.match(Problem.build(requests=[], providers=[]))
        assert result.assignments == ()
        assert result.unmatched == ()
        assert result.objective == 0.0
        assert result.stats.gap == 0.0

    def test_no_providers(self) -> None:
        result = matching.match(Problem.build(requests=[_request(0), _request(1)], providers=[]))
        assert [u.reason for u in result.unmatched] == [matching.Reason.CATEGORY] * 2

    def test_no_requests(self) -> None:
        result = matching.match(Problem.build(requests=[], providers=[_provider(0)]))
        assert result.stats.providers == 1
        assert result.assignments == ()

    def test_zero_capacity(self) -> None:
        problem = Problem.build(requests=[_request(0)], providers=[_provider(0, capacity=0)])
        (u,) = matching.match(problem).unmatched
        assert u.reason is matching.Reason.CAPACITY

    def test_int_ids_and_empty_texts(self) -> None:
        problem = Problem.build(
            requests=[_request(0, id=10, text=""), _request(1, id=2, text="")],
            providers=[_provider(0, id=7, expertise="", capacity=2)],
        )
        result = matching.match(problem)
        assert result.pairs == ((2, 7), (10, 7))

    def test_priority_breaks_scarcity(self) -> None:
        problem = Problem.build(
            requests=[_request(0, urgency=1), _request(1, urgency=5, tier="champion")],
            providers=[_provider(0)],
        )
        assert matching.match(problem).pairs == (("r1", "p0"),)

    def test_pin_breaking_a_hard_rule_is_infeasible(self) -> None:
        problem = Problem.build(
            requests=[_request(0)],
            providers=[_provider(0, conflicts=["e0"])],
            pinned=[("r0", "p0")],
        )
        with pytest.raises(matching.Infeasible, match="conflict"):
            matching.match(problem)

    def test_pins_over_capacity_are_infeasible(self) -> None:
        problem = Problem.build(
            requests=[_request(0), _request(1)],
            providers=[_provider(0)],
            pinned=[("r0", "p0"), ("r1", "p0")],
        )
        with pytest.raises(matching.Infeasible, match="p0"):
            matching.match(problem)

    def test_pin_below_min_score_is_kept(self) -> None:
        problem = Problem.build(
            requests=[_request(0)], providers=[_provider(0)], pinned=[("r0", "p0")]
        )
        result = matching.match(problem, Weights(min_score=1.0))
        assert result.pairs == (("r0", "p0"),)
        assert result.assignments[0].pinned

    def test_fairness_spreads_load(self) -> None:
        requests = [_request(i) for i in range(2)]
        providers = [_provider(0, capacity=2, rating=5.0), _provider(1, capacity=2, rating=4.0)]
        problem = Problem.build(requests=requests, providers=providers)
        assert {p for _, p in matching.match(problem).pairs} == {"p0"}
        spread = matching.match(problem, Weights(fairness=0.5))
        assert {p for _, p in spread.pairs} == {"p0", "p1"}
        assert sorted(a.explanation.slot_multiplier for a in spread.assignments) == [1.0, 1.0]

    def test_stats_count_stages(self) -> None:
        problem = Problem.build(requests=[_request(0), _request(1)], providers=[_provider(0)])
        stats = matching.match(problem).stats
        assert (stats.requests, stats.providers, stats.matched, stats.unmatched) == (2, 1, 1, 1)
        assert stats.candidate_pairs == 2
        assert stats.requests_with_candidates == 2
        assert {"validate", "encode", "text", "candidates", "solve", "explain", "total"} <= set(
            stats.seconds
        )
