"""``check_pairs`` is the solver's own rule set: a pair passes it exactly when the candidate
generator would consider it (before the top-K cut), on any small problem."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings

import matching
from matching import Problem, ProviderIn, RequestIn, Weights
from matching.scoring.candidates import RULES
from tests.matching.strategies import problems, weights


@settings(max_examples=60, deadline=None)
@given(problem=problems(), w=weights())
def test_a_pair_passes_exactly_when_the_engine_would_rank_it(problem: Problem, w: Weights) -> None:
    wide = dataclasses.replace(w, top_k=max(1, len(problem.providers)))
    ranked = matching.rank(problem, wide)
    pairs = [(r, p) for r in problem.requests.id.tolist() for p in problem.providers.id.tolist()]
    checks = matching.check_pairs(problem, pairs, wide)
    passing = {(c.request, c.provider) for c in checks if not c.broken}
    ranked_pairs = {(r, c.provider) for r, cands in ranked.items() for c in cands}
    assert passing == ranked_pairs
    for c in checks:
        assert 0.0 <= c.fit <= 1.0
        assert list(c.broken) == [r for r in RULES if r in c.broken]


def test_every_broken_rule_is_named_not_only_the_first() -> None:
    request = RequestIn("r", "export", "出口", "C17", "350582", "e")
    far = ProviderIn("p", skills={"export": 1}, regions=("41",), capacity=0)
    (check,) = matching.check_pairs(
        Problem.build(requests=[request], providers=[far]), [("r", "p")], Weights(min_score=0.9)
    )
    assert check.broken == ("capacity", "region", "min_score")


def test_an_unknown_id_is_refused() -> None:
    request = RequestIn("r", "export", "", "C17", "350582", "e")
    problem = Problem.build(requests=[request], providers=[ProviderIn("p", skills={"export": 1})])
    with pytest.raises(matching.InvalidProblem, match="nobody"):
        matching.check_pairs(problem, [("r", "nobody")])
