"""Unmatched reasons on constructed cases, and the one-line reasons of chosen pairs."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import matching
from matching import Exclusion, Problem, ProviderIn, Reason, RequestIn, Weights
from matching.explaining.explanations import industry_label
from matching.scoring.lexicon import Lexicon

LABELS = Lexicon(
    labels={
        "legal_ip": ("法律与知识产权", "Legal and IP"),
        "financing": ("融资", "Financing"),
        "export": ("出口", "Export"),
    }
)


def _request(i: int = 0, **kw: Any) -> RequestIn:
    base = RequestIn(
        id=f"r{i}",
        category="legal_ip",
        text="商标注册",
        industry="C1711",
        region="410102",
        enterprise=f"e{i}",
    )
    return dataclasses.replace(base, **kw)


def _provider(j: int = 0, **kw: Any) -> ProviderIn:
    base = ProviderIn(
        id=f"p{j}",
        skills={"legal_ip": 3},
        expertise="trademark registration",
        industries=("C17",),
        regions=("4101",),
        capacity=1,
    )
    return dataclasses.replace(base, **kw)


def _only_unmatched(problem: Problem, weights: Weights | None = None) -> matching.Unmatched:
    (u,) = matching.match(problem, weights).unmatched
    return u


class TestUnmatchedRules:
    @pytest.mark.parametrize(
        ("provider", "reason"),
        [
            (_provider(skills={"export": 3}), Reason.CATEGORY),
            (_provider(active=False), Reason.INACTIVE),
            (_provider(paused=True), Reason.INACTIVE),
            (_provider(capacity=2, load=2), Reason.CAPACITY),
            (_provider(regions=("35",)), Reason.REGION),
            (_provider(conflicts=("e0",)), Reason.CONFLICT),
        ],
    )
    def test_single_rule(self, provider: ProviderIn, reason: Reason) -> None:
        u = _only_unmatched(Problem.build(requests=[_request()], providers=[provider]))
        assert u.reason is reason
        assert u.removed[str(reason)] == 1
        assert sum(u.removed.values()) == 1
        assert u.taken_by == ()
        assert u.message_en
        assert u.message_zh

    def test_remote_lifts_the_region_rule(self) -> None:
        problem = Problem.build(
            requests=[_request()], providers=[_provider(regions=("35",), remote=True)]
        )
        result = matching.match(problem)
        assert result.pairs == (("r0", "p0"),)
        assert "remote" in result.assignments[0].explanation.reason_en

    @pytest.mark.parametrize(
        "exclusion", [Exclusion("p0", request="r0"), Exclusion("p0", enterprise="e0")]
    )
    def test_exclusion_by_request_or_enterprise(self, exclusion: Exclusion) -> None:
        problem = Problem.build(
            requests=[_request()], providers=[_provider()], exclusions=[exclusion]
        )
        assert _only_unmatched(problem).reason is Reason.EXCLUDED

    def test_min_score(self) -> None:
        problem = Problem.build(
            requests=[_request()], providers=[_provider(skills={"legal_ip": 1})]
        )
        u = _only_unmatched(problem, Weights(min_score=0.9))
        assert u.reason is Reason.MIN_SCORE
        assert u.removed["min_score"] == 1

    def test_last_rule_of_the_funnel_is_named_with_counts(self) -> None:
        providers = [
            _provider(0, skills={"export": 3}),
            _provider(1, paused=True),
            _provider(2, regions=("35",)),
            _provider(3, regions=("35",)),
            _provider(4, conflicts=("e0",)),
        ]
        u = _only_unmatched(Problem.build(requests=[_request()], providers=providers))
        assert u.reason is Reason.CONFLICT
        assert dict(u.removed) == {
            "category": 1,
            "inactive": 1,
            "capacity": 0,
            "region": 2,
            "conflict": 1,
            "excluded": 0,
            "min_score": 0,
        }
        assert "2 do not serve the region" in u.message_en
        assert "2 位不服务该地区" in u.message_zh

    def test_no_provider_at_all(self) -> None:
        u = _only_unmatched(Problem.build(requests=[_request()], providers=[]))
        assert u.reason is Reason.CATEGORY
        assert "legal_ip" in u.message_en  # no labels given: the key stands in

    @pytest.mark.parametrize(
        "provider",
        [_provider(skills={"export": 3}), _provider(regions=("35",)), _provider(active=False)],
    )
    def test_messages_name_the_category_by_its_label(self, provider: ProviderIn) -> None:
        problem = Problem.build(requests=[_request()], providers=[provider], lexicon=LABELS)
        u = _only_unmatched(problem)
        assert "「法律与知识产权」" in u.message_zh
        assert "Legal and IP" in u.message_en
        assert "legal_ip" not in u.message_zh + u.message_en

    def test_capacity_taken_names_the_winners(self) -> None:
        requests = [_request(0, urgency=1), _request(1, urgency=5), _request(2, urgency=4)]
        providers = [_provider(0), _provider(1)]
        result = matching.match(Problem.build(requests=requests, providers=providers))
        (u,) = result.unmatched
        assert u.request == "r0"
        assert u.reason is Reason.CAPACITY_TAKEN
        assert set(u.taken_by) == {"r1", "r2"}
        assert "r1" in u.message_en
        assert "r1" in u.message_zh
        assert result.stats.unmatched_by_reason == {"capacity_taken": 1}


class TestPairReasons:
    def test_reason_line_names_skill_region_and_industry(self) -> None:
        problem = Problem.build(
            requests=[_request(region="350582", industry="C1711")],
            providers=[_provider(regions=("350582",), industries=("C17",))],
        )
        e = matching.match(problem).assignments[0].explanation
        assert "资深legal_ip专家" in e.reason_zh
        assert "同县" in e.reason_zh
        assert "同行业C17" in e.reason_zh
        assert "senior legal_ip expert" in e.reason_en
        assert "same county" in e.reason_en
        assert "same industry C17" in e.reason_en

    def test_reason_uses_labels_and_names_the_deciding_factor_first(self) -> None:
        problem = Problem.build(
            requests=[
                _request(
                    category="financing", text="想找银行续贷，贷款授信额度不够", region="410102"
                )
            ],
            providers=[
                _provider(
                    skills={"financing": 2},
                    expertise="银行贷款、授信与续贷辅导",
                    regions=("410102",),
                    industries=(),
                    kind="platform",
                )
            ],
            lexicon=LABELS,
        )
        e = matching.match(problem).assignments[0].explanation
        parts = e.reason_zh.split(" · ")
        words = {"skill": "融资服务平台", "region": "同县", "industry": "行业不限"}
        text_part = next(p for p in parts if p.startswith("文本"))
        assert "贷款" in text_part
        words["text"] = text_part
        by_weight = sorted(words, key=lambda f: -e.contributions[f])
        assert parts == [words[f] for f in by_weight]
        assert "financing" not in e.reason_zh + e.reason_en
        assert "Financing platform" in e.reason_en

    @pytest.mark.parametrize(
        ("served", "zh", "en"),
        [
            (("4101",), "同市", "same city"),
            (("41",), "同省", "same province"),
            ((), "服务不限地区", "anywhere"),
        ],
    )
    def test_region_words(self, served: tuple[str, ...], zh: str, en: str) -> None:
        problem = Problem.build(requests=[_request()], providers=[_provider(regions=served)])
        e = matching.match(problem).assignments[0].explanation
        assert zh in e.reason_zh
        assert en in e.reason_en

    def test_pinned_pairs_say_so(self) -> None:
        problem = Problem.build(
            requests=[_request()], providers=[_provider()], pinned=[("r0", "p0")]
        )
        e = matching.match(problem).assignments[0].explanation
        assert e.reason_zh.startswith("人工指定")
        assert e.reason_en.startswith("pinned")

    @pytest.mark.parametrize(
        ("code", "served", "label"),
        [
            ("C1711", ["C17"], "C17"),
            ("C17", ["C1711"], "C17"),
            ("C1711", ["C18"], "C"),
            ("C1711", ["C1712", "C18"], "C171"),
            ("C1711", ["E47"], None),
        ],
    )
    def test_industry_label(self, code: str, served: list[str], label: str | None) -> None:
        assert industry_label(code, served) == label
