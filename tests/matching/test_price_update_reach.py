"""Global price updates with a distance cap stay exact.

:mod:`matching.solving._price_update` limits each Dijkstra search to twice the largest
distance the previous update found and raises providers beyond it by the cap; the
argument (``min(d, D)`` keeps the triangle inequality) is checked here with a cap that
bites: eps-CS after each update, and whole solves against ``milp`` with the certificate
recomputed.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from scipy.sparse.csgraph import dijkstra

from matching.solving import _price_update
from matching.solving import solve as solve_module
from tests.matching import test_solve_shapes as shapes


@pytest.mark.parametrize("reach", [1e-12, 0.5])
def test_capped_updates_keep_eps_cs_and_exactness(reach: float) -> None:
    """``_REACH`` below 1 caps the next update under distances already seen."""
    limits: list[float] = []

    def recorded(graph: Any, **kwargs: Any) -> Any:
        limits.append(float(kwargs["limit"]))
        return dijkstra(graph, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_price_update, "_REACH", reach)
        patch.setattr(_price_update, "dijkstra", recorded)
        patch.setattr(solve_module, "_EXACT_FIRST_REQUESTS", -1)  # the auction's path
        shapes.test_price_updates_keep_eps_complementary_slackness()
        shapes.test_price_war_instance_needs_no_lp()
    assert any(math.isfinite(limit) for limit in limits), "no capped update ran"
