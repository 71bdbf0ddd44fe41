"""Feature functions: ranges, documented values, and blocked == per-pair evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import Weights
from matching.scoring.features import (
    GENERALIST_INDUSTRY,
    INDUSTRY_FIT,
    REGION_FIT,
    RegionLevel,
    combine,
    industry_pairs,
    industry_table,
    priority,
    rating_fit,
    region_pairs,
    region_table,
)

Five = tuple[float, float, float, float, float]  # one value per feature, in combine's order

industry_codes = st.builds(
    lambda s, d, g, c: s + d + g + c if d else s,
    st.sampled_from("CE"),
    st.sampled_from(["", "17", "18"]),
    st.sampled_from(["", "1", "2"]),
    st.sampled_from(["", "1", "2"]),
)
county_codes = st.builds(
    lambda p, c, k: p + c + k,
    st.sampled_from(["35", "41"]),
    st.sampled_from(["01", "05"]),
    st.sampled_from(["02", "82"]),
)
region_prefixes = county_codes.flatmap(lambda c: st.sampled_from([c[:2], c[:4], c]))


class TestIndustry:
    @pytest.mark.parametrize(
        ("code", "served", "fit"),
        [
            ("C1711", ("C17",), 1.0),
            ("C17", ("C1711",), 1.0),
            ("C1711", ("C",), 1.0),
            ("C1711", ("C18",), 0.25),
            ("C1711", ("C1712",), 0.75),
            ("C1711", ("E47",), 0.0),
            ("C1711", ("E47", "C171"), 1.0),
            ("C17", ("C18",), 0.5),
            ("C1711", (), GENERALIST_INDUSTRY),
        ],
    )
    def test_documented_values(self, code: str, served: tuple[str, ...], fit: float) -> None:
        assert INDUSTRY_FIT[industry_table([code], [served])[0, 0]] == fit

    @settings(max_examples=80, deadline=None)
    @given(
        st.lists(industry_codes, min_size=1, max_size=6),
        st.lists(st.lists(industry_codes, max_size=3).map(tuple), min_size=1, max_size=5),
    )
    def test_table_equals_pairs_and_is_a_fraction(
        self, codes: list[str], served: list[tuple[str, ...]]
    ) -> None:
        table = industry_table(codes, served)
        assert table.shape == (len(codes), len(served))
        assert table.max() <= 12
        pairs = [(i, j) for i in range(len(codes)) for j in range(len(served))]
        values = industry_pairs([codes[i] for i, _ in pairs], [served[j] for _, j in pairs])
        assert np.array_equal(values, np.array([table[i, j] for i, j in pairs], dtype=np.uint8))


class TestRegion:
    @pytest.mark.parametrize(
        ("served", "remote", "level"),
        [
            (("350582",), False, RegionLevel.COUNTY),
            (("3505",), False, RegionLevel.CITY),
            (("35",), False, RegionLevel.PROVINCE),
            ((), False, RegionLevel.ANYWHERE),
            (("41",), True, RegionLevel.REMOTE),
            (("41",), False, RegionLevel.NOT_SERVED),
            (("350583", "35"), False, RegionLevel.PROVINCE),
            (("3505", "350582"), False, RegionLevel.COUNTY),
        ],
    )
    def test_levels(self, served: tuple[str, ...], remote: bool, level: int) -> None:
        assert region_table(["350582"], [served], np.array([remote]))[0, 0] == level

    def test_fit_is_monotone_in_proximity(self) -> None:
        assert list(REGION_FIT) == sorted(REGION_FIT)
        assert REGION_FIT[0] == 0
        assert REGION_FIT[-1] == 1

    @settings(max_examples=80, deadline=None)
    @given(
        st.lists(county_codes, min_size=1, max_size=5),
        st.lists(
            st.tuples(st.lists(region_prefixes, max_size=3).map(tuple), st.booleans()),
            min_size=1,
            max_size=5,
        ),
    )
    def test_table_equals_pairs(
        self, regions: list[str], providers: list[tuple[tuple[str, ...], bool]]
    ) -> None:
        served = [s for s, _ in providers]
        remote = np.array([r for _, r in providers])
        table = region_table(regions, served, remote)
        pairs = [(i, j) for i in range(len(regions)) for j in range(len(served))]
        values = region_pairs(
            [regions[i] for i, _ in pairs],
            [served[j] for _, j in pairs],
            remote[[j for _, j in pairs]],
        )
        assert np.array_equal(values, np.array([table[i, j] for i, j in pairs], dtype=np.uint8))
        served_any = np.array(
            [[not s or any(r.startswith(p) for p in s) for s in served] for r in regions]
        )
        assert np.array_equal(table > 0, served_any | remote[None, :])


class TestRatingPriorityCombine:
    def test_rating(self) -> None:
        assert np.allclose(rating_fit(np.array([np.nan, 0.0, 2.5, 5.0])), [0.6, 0.0, 0.5, 1.0])

    def test_priority_grows_with_urgency_and_tier(self) -> None:
        w = Weights()
        p = priority(np.array([1, 3, 5, 5]), np.array([0, 0, 0, 4]), w)
        assert p[0] == 1.0
        assert np.all(np.diff(p) > 0)

    @settings(max_examples=50, deadline=None)
    @given(
        st.tuples(*[st.floats(0, 1)] * 5),
        st.tuples(*[st.sampled_from([0.0, 0.2, 1.0, 3.0])] * 5).filter(lambda w: sum(w) > 0),
    )
    def test_fit_is_in_unit_interval(self, f: Five, w: Five) -> None:
        skill, text, industry, region, rating = (np.array([v]) for v in f)
        fit = float(combine(skill, text, industry, region, rating, Weights(*w))[0])
        assert -1e-12 <= fit <= 1 + 1e-12
