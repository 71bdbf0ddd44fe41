"""Secondary categories: a provider covering one may take the request, at a lower skill fit."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import matching
from matching import Problem, ProviderIn, Reason, RequestIn, Weights
from matching.scoring.lexicon import Lexicon

LABELS = Lexicon(labels={"financing": ("融资", "Financing"), "legal_ip": ("法律", "Legal")})


def _request(**kw: Any) -> RequestIn:
    base = RequestIn(
        id="r0",
        category="financing",
        text="欠款追不回来，合同纠纷影响资金周转",
        industry="C17",
        region="350582",
        enterprise="e0",
        extra_categories=("legal_ip",),
    )
    return dataclasses.replace(base, **kw)


def _provider(pid: str, skills: dict[str, int], **kw: Any) -> ProviderIn:
    base = ProviderIn(id=pid, skills=skills, regions=("35",), capacity=1)
    return dataclasses.replace(base, **kw)


class TestSecondaryMatch:
    def test_a_provider_of_a_secondary_category_can_take_it(self) -> None:
        problem = Problem.build(
            requests=[_request()], providers=[_provider("lawyer", {"legal_ip": 3})], lexicon=LABELS
        )
        (a,) = matching.match(problem).assignments
        assert a.provider == "lawyer"
        w = Weights()
        assert a.explanation.features["skill"] == pytest.approx(w.secondary)
        assert "资深法律专家（次要类别）" in a.explanation.reason_zh
        assert "senior Legal expert (secondary category)" in a.explanation.reason_en

    def test_the_primary_category_fits_better_at_the_same_level(self) -> None:
        providers = [_provider("banker", {"financing": 2}), _provider("lawyer", {"legal_ip": 2})]
        ranked = matching.rank(Problem.build(requests=[_request()], providers=providers))
        by_id = {c.provider: c for c in ranked["r0"]}
        assert by_id["banker"].features["skill"] == pytest.approx(2 / 3)
        assert by_id["lawyer"].features["skill"] == pytest.approx(2 / 3 * Weights().secondary)
        assert by_id["banker"].fit > by_id["lawyer"].fit

    def test_a_provider_of_both_is_scored_once_on_its_better_one(self) -> None:
        both = _provider("both", {"financing": 1, "legal_ip": 3})
        ranked = matching.rank(Problem.build(requests=[_request()], providers=[both]))
        (only,) = ranked["r0"]
        assert only.features["skill"] == pytest.approx(max(1 / 3, Weights().secondary))

    def test_secondary_off_in_effect_when_its_share_is_zero(self) -> None:
        problem = Problem.build(requests=[_request()], providers=[_provider("l", {"legal_ip": 3})])
        result = matching.match(problem, Weights(secondary=0.0, min_score=0.5))
        assert result.assignments == ()

    def test_a_pin_on_a_secondary_provider_holds(self) -> None:
        problem = Problem.build(
            requests=[_request()],
            providers=[_provider("lawyer", {"legal_ip": 3})],
            pinned=[("r0", "lawyer")],
        )
        (a,) = matching.match(problem).assignments
        assert a.pinned
        assert a.explanation.features["skill"] == pytest.approx(Weights().secondary)

    def test_without_secondary_categories_nothing_changes(self) -> None:
        problem = Problem.build(
            requests=[_request(extra_categories=())], providers=[_provider("l", {"legal_ip": 3})]
        )
        (u,) = matching.match(problem).unmatched
        assert u.reason is Reason.CATEGORY

    def test_unmatched_says_the_secondary_ones_were_tried(self) -> None:
        problem = Problem.build(
            requests=[_request()],
            providers=[_provider("far", {"legal_ip": 3}, regions=("41",))],
            lexicon=LABELS,
        )
        (u,) = matching.match(problem).unmatched
        assert "次要类别「法律」也没有可用的服务方" in u.message_zh
        assert "secondary Legal" in u.message_en

    def test_bad_secondary_category_is_invalid(self) -> None:
        problem = Problem.build(requests=[_request(extra_categories=("",))], providers=[])
        with pytest.raises(matching.InvalidProblem, match=r"requests\.extra"):
            matching.match(problem)

    def test_supply_check_leaves_flexible_requests_out_of_demand(self) -> None:
        problem = Problem.build(requests=[_request()], providers=[])
        assert matching.check_supply(problem) == []
        plain = Problem.build(requests=[_request(extra_categories=())], providers=[])
        assert matching.check_supply(plain)
