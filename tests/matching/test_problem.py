"""Problem construction (rows and arrays) and validation at the boundary."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

import matching
from matching import Exclusion, InvalidProblem, Problem, ProviderIn, RequestIn, Weights


def _request(**kw: Any) -> RequestIn:
    base = RequestIn(
        id="r1",
        category="financing",
        text="融资",
        industry="C17",
        region="350582",
        enterprise="e1",
    )
    return dataclasses.replace(base, **kw)


def _provider(**kw: Any) -> ProviderIn:
    base = ProviderIn(id="p1", skills={"financing": 2}, expertise="loans")
    return dataclasses.replace(base, **kw)


def _problem(**kw: object) -> Problem:
    return Problem.build(requests=[_request(**kw)], providers=[_provider()])


class TestBuild:
    def test_rows_become_columns(self) -> None:
        problem = Problem.build(
            requests=[_request(), _request(id="r2", tier="champion")],
            providers=[_provider(rating=None), _provider(id="p2", rating=4.0)],
        )
        assert list(problem.requests.id) == ["r1", "r2"]
        assert list(problem.requests.tier) == ["none", "champion"]
        assert np.isnan(problem.providers.rating[0])
        assert problem.providers.rating[1] == 4.0
        matching.validate(problem)

    def test_categories_and_enums(self) -> None:
        assert len(matching.CATEGORIES) == 13
        assert "legal_ip" in matching.CATEGORIES
        assert matching.Tier("little_giant").rank == 3
        assert str(matching.Kind.PLATFORM) == "platform"

    def test_extended_category_is_accepted(self) -> None:
        problem = Problem.build(
            requests=[_request(category="carbon_audit")],
            providers=[_provider(skills={"carbon_audit": 3})],
        )
        assert matching.match(problem).pairs == (("r1", "p1"),)

    def test_take_keeps_rows_aligned(self) -> None:
        problem = Problem.build(
            requests=[_request(), _request(id="r2", text="贷款")],
            providers=[_provider(), _provider(id="p2", regions=("35",))],
        )
        flipped = problem.providers.take(np.array([1, 0]))
        assert list(flipped.id) == ["p2", "p1"]
        assert flipped.regions == (("35",), ())
        assert list(problem.requests.take(np.array([1])).text) == ["贷款"]


class TestValidation:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"region": "35058"}, "requests.region"),
            ({"region": 350582}, "requests.region"),
            ({"industry": "17"}, "requests.industry"),
            ({"industry": "C1"}, "requests.industry"),
            ({"urgency": 6}, "requests.urgency"),
            ({"tier": "gold"}, "requests.tier"),
            ({"category": ""}, "requests.category"),
            ({"id": ""}, "requests.id"),
            ({"id": True}, "requests.id"),
            ({"text": None}, "requests.text"),
        ],
    )
    def test_request_fields(self, change: dict[str, object], field: str) -> None:
        with pytest.raises(InvalidProblem, match=field.replace(".", r"\.")):
            matching.validate(_problem(**change))

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"skills": {"financing": 4}}, "providers.skills"),
            ({"skills": {"financing": True}}, "providers.skills"),
            ({"regions": ("350",)}, "providers.regions"),
            ({"industries": ("c17",)}, "providers.industries"),
            ({"capacity": -1}, "providers.capacity"),
            ({"load": -2}, "providers.load"),
            ({"capacity": 2.5}, "providers.capacity"),
            ({"rating": 5.5}, "providers.rating"),
            ({"rating": "good"}, "providers.rating"),
            ({"kind": "robot"}, "providers.kind"),
            ({"conflicts": [None]}, "providers.conflicts"),
        ],
    )
    def test_provider_fields(self, change: dict[str, object], field: str) -> None:
        problem = Problem.build(requests=[_request()], providers=[_provider(**change)])
        with pytest.raises(InvalidProblem, match=field.replace(".", r"\.")):
            matching.validate(problem)

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"kind": "robot"}, r"providers\.kind\[1\]"),
            ({"expertise": 7}, r"providers\.expertise\[1\]"),
            ({"conflicts": [True]}, r"providers\.conflicts\[1\]"),  # beside 1: equal in a set
            ({"conflicts": [""]}, r"providers\.conflicts\[1\]"),
        ],
    )
    def test_provider_columns_checked_at_once_still_name_the_row(
        self, change: dict[str, object], field: str
    ) -> None:
        """Kinds, texts and conflicts are judged on their distinct values first; a fault
        among valid rows is still found and named by its row."""
        good = _provider(id="p0", conflicts=[1, "e2"])
        problem = Problem.build(requests=[_request()], providers=[good, _provider(**change)])
        with pytest.raises(InvalidProblem, match=field):
            matching.validate(problem)

    def test_message_names_the_row(self) -> None:
        problem = Problem.build(requests=[_request(), _request(id="bad", region="x")], providers=[])
        with pytest.raises(InvalidProblem, match=r"requests\.region\[1\] \(id 'bad'\)"):
            matching.match(problem)

    def test_duplicate_ids(self) -> None:
        problem = Problem.build(requests=[_request(), _request()], providers=[])
        with pytest.raises(InvalidProblem, match="duplicate"):
            matching.validate(problem)

    def test_column_lengths(self) -> None:
        problem = _problem()
        short = dataclasses.replace(problem.requests, urgency=np.array([1, 2]))
        with pytest.raises(InvalidProblem, match="differ in length"):
            matching.validate(Problem(short, problem.providers))

    @pytest.mark.parametrize(
        ("pinned", "message"),
        [([("r1", "nope")], "unknown"), ([("r1", "p1"), ("r1", "p1")], "pinned twice")],
    )
    def test_pins(self, pinned: list[tuple[str, str]], message: str) -> None:
        with pytest.raises(InvalidProblem, match=message):
            matching.validate(_problem().replace(pinned=pinned))

    def test_exclusion_needs_exactly_one_target(self) -> None:
        with pytest.raises(InvalidProblem, match="exclusions"):
            matching.validate(_problem().replace(exclusions=[Exclusion("p1")]))

    def test_unknown_exclusion_ids_are_ignored(self) -> None:
        problem = _problem().replace(
            exclusions=[Exclusion("ghost", request="r1"), Exclusion("p1", request="x")]
        )
        assert matching.match(problem).pairs == (("r1", "p1"),)

    def test_not_a_problem(self) -> None:
        with pytest.raises(InvalidProblem, match="Problem"):
            matching.validate("problem")  # type: ignore[arg-type]


class TestWeights:
    def test_defaults_are_valid_and_normalised(self) -> None:
        w = Weights()
        assert sum(w.normalised) == pytest.approx(1.0)
        assert w.skill > w.rating

    @pytest.mark.parametrize(
        "change",
        [
            {"skill": -1.0},
            {"text": float("nan")},
            {"skill": 0.0, "text": 0.0, "industry": 0.0, "region": 0.0, "rating": 0.0},
            {"min_score": 1.5},
            {"top_k": 0},
            {"fairness": 1.0},
            {"top_k": 2.5},
            {"runners_up": True},
        ],
    )
    def test_invalid(self, change: dict[str, object]) -> None:
        with pytest.raises(InvalidProblem, match="weights"):
            Weights(**change)  # type: ignore[arg-type]

    def test_frozen(self) -> None:
        with pytest.raises(dataclasses.FrozenInstanceError):
            Weights().skill = 2.0  # type: ignore[misc]


class TestArrayForm:
    def test_lists_are_accepted(self) -> None:
        # Passed as an untyped caller (JSON, a notebook) would: the fields are typed as the
        # arrays they hold, and lists are coerced on the way in.
        request_columns: dict[str, Any] = {
            "id": ["r1", "r2"],
            "category": ["legal_ip"] * 2,
            "text": ["专利", "patent"],
            "industry": ["C17", "C18"],
            "region": ["350582", "410102"],
            "urgency": [3, 5],
            "tier": ["none", "champion"],
            "enterprise": ["e1", "e2"],
        }
        provider_columns: dict[str, Any] = {
            "id": ["p1"],
            "kind": ["expert"],
            "skills": [{"legal_ip": 3}],
            "expertise": ["patent 专利"],
            "industries": [["C17"]],
            "regions": [[]],
            "remote": [False],
            "capacity": [2],
            "load": [0],
            "paused": [False],
            "active": [True],
            "rating": [None],
            "conflicts": [[]],
        }
        requests = matching.RequestTable(**request_columns)
        providers = matching.ProviderTable(**provider_columns)
        problem = Problem(requests, providers)
        assert np.isnan(problem.providers.rating[0])
        assert problem.providers.regions == ((),)
        assert matching.match(problem).pairs == (("r1", "p1"), ("r2", "p1"))

    def test_bad_values_still_fail_validation(self) -> None:
        columns: dict[str, Any] = {
            "id": ["r1"],
            "category": ["legal_ip"],
            "text": ["x"],
            "industry": ["C17"],
            "region": ["350582"],
            "urgency": ["high"],
            "tier": ["none"],
            "enterprise": ["e1"],
        }
        requests = matching.RequestTable(**columns)
        providers = Problem.build(requests=[], providers=[]).providers
        with pytest.raises(InvalidProblem, match="urgency"):
            matching.validate(Problem(requests, providers))
