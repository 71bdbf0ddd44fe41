"""Supply/demand pre-check: constructed shortages, and the bound never lies."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings

import matching
from matching import Problem, ProviderIn, RequestIn
from matching.scoring.lexicon import Lexicon
from tests.matching.strategies import problems


def _request(i: int, region: str = "410102", **kw: Any) -> RequestIn:
    base = RequestIn(
        id=f"r{i}",
        category="legal_ip",
        text="专利",
        industry="C17",
        region=region,
        enterprise=f"e{i}",
    )
    return dataclasses.replace(base, **kw)


def _provider(j: int, **kw: Any) -> ProviderIn:
    base = ProviderIn(
        id=f"p{j}",
        skills={"legal_ip": 3},
        regions=("41",),
        capacity=1,
    )
    return dataclasses.replace(base, **kw)


class TestConstructed:
    def test_no_expert_at_all(self) -> None:
        shortages = matching.check_supply(Problem.build(requests=[_request(0)], providers=[]))
        assert [(s.region, s.level, s.demand, s.supply) for s in shortages] == [
            ("41", "province", 1, 0),
            ("4101", "city", 1, 0),
        ]
        city = shortages[1]
        assert city.message_en.startswith(
            "no unconflicted expert or platform for legal_ip in 4101 with free capacity"
        )
        assert "4101" in city.message_zh
        assert "legal_ip" in city.message_zh  # no labels given: the key stands in

    def test_messages_use_the_labels_given(self) -> None:
        lexicon = Lexicon(labels={"legal_ip": ("法律与知识产权", "Legal and IP")})
        problem = Problem.build(requests=[_request(0)], providers=[], lexicon=lexicon)
        city = matching.check_supply(problem)[1]
        assert "法律与知识产权" in city.message_zh
        assert "Legal and IP" in city.message_en
        assert "legal_ip" not in city.message_zh + city.message_en

    def test_demand_against_capacity(self) -> None:
        requests = [_request(i) for i in range(3)] + [_request(3, region="410302")]
        shortages = matching.check_supply(
            Problem.build(requests=requests, providers=[_provider(0, capacity=2)])
        )
        by_region = {s.region: s for s in shortages}
        assert (by_region["41"].demand, by_region["41"].supply) == (4, 2)
        assert (by_region["4101"].demand, by_region["4101"].supply) == (3, 2)
        assert "4103" not in by_region
        assert by_region["41"].shortfall == 2
        assert shortages[0].region == "41"
        assert "demand 3 requests vs free capacity 2" in by_region["4101"].message_en
        assert "需求 3 项" in by_region["4101"].message_zh

    def test_conflicts_exclusions_and_pauses_remove_supply(self) -> None:
        providers = [
            _provider(0, conflicts=["e0"]),
            _provider(1, paused=True),
            _provider(2, skills={"export": 3}),
        ]
        (province, city) = matching.check_supply(
            Problem.build(requests=[_request(0)], providers=providers)
        )
        assert province.supply == city.supply == 0
        assert city.providers == 0

    def test_remote_and_anywhere_providers_supply_everywhere(self) -> None:
        providers = [_provider(0, regions=("35",), remote=True), _provider(1, regions=())]
        problem = Problem.build(
            requests=[_request(0), _request(1, region="350582")], providers=providers
        )
        assert matching.check_supply(problem) == []

    def test_pins_consume_capacity_and_are_not_demand(self) -> None:
        problem = Problem.build(
            requests=[_request(0), _request(1)], providers=[_provider(0)], pinned=[("r0", "p0")]
        )
        shortages = matching.check_supply(problem)
        assert {(s.demand, s.supply) for s in shortages} == {(1, 0)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_requests=10, max_providers=5))
def test_shortfall_is_binding(problem: Problem) -> None:
    """However the solver assigns, a shortage cell gets at most ``supply`` matches."""
    result = matching.match(problem, matching.Weights(min_score=0.0, top_k=50))
    reqs = problem.requests
    # requests with secondary categories are not demand: other cells' providers may take them
    cell_of = {
        reqs.id[i]: (reqs.category[i], reqs.region[i])
        for i in range(len(reqs))
        if not reqs.extra[i]
    }
    for s in matching.check_supply(problem):
        matched = sum(
            1
            for r, _ in result.pairs
            if r in cell_of and cell_of[r][0] == s.category and cell_of[r][1].startswith(s.region)
        )
        assert matched <= s.supply < s.demand
