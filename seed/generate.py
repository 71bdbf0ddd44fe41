"""The whole demo data set as plain Python values: a pure function of its arguments.

Keeping generation apart from the database makes determinism testable without one (same
arguments, equal result) and keeps the loader a thin, fast bulk writer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.models import Severity
from seed.catalog import load_catalog
from seed.enterprises import EnterpriseGenerator
from seed.pools import Pools
from seed.providers import ProviderGenerator

PLATFORM_SHARE = 0.15


@dataclass(frozen=True, slots=True)
class DemoData:
    """Rows without database ids; references between them are list indexes.

    ``requests`` and ``conflicts`` point into ``enterprises`` (and ``providers``) by index;
    ``providers`` holds the experts first, then the platforms.
    """

    enterprises: list[dict[str, Any]]
    requests: list[tuple[int, dict[str, Any]]]
    providers: list[dict[str, Any]]
    conflicts: list[tuple[int, int, str]]
    experts: int
    platforms: int

    @property
    def first_expert(self) -> int | None:
        return 0 if self.experts else None

    @property
    def first_platform(self) -> int | None:
        return self.experts if self.platforms else None


def split_providers(total: int) -> tuple[int, int]:
    """About 85% experts and 15% platforms; at least one of each once there are two."""
    if total <= 1:
        return max(total, 0), 0
    platforms = max(1, round(total * PLATFORM_SHARE))
    return total - platforms, platforms


def generate_demo(
    *,
    seed: int,
    enterprises: int,
    providers: int,
    requests_per_enterprise: float,
    severities: dict[str, Severity],
    now: datetime,
) -> DemoData:
    """Generate everything. Enterprises and providers draw from separate random streams, so
    asking for more providers does not change the enterprises (and the other way round)."""
    catalog = load_catalog()
    pools = Pools.build(seed)
    firms = EnterpriseGenerator(catalog, pools, random.Random(f"{seed}/enterprises"), now)
    enterprise_rows = firms.enterprises(enterprises)
    request_rows = firms.requests(requests_per_enterprise, severities)

    experts, platforms = split_providers(providers)
    people = ProviderGenerator(
        catalog, pools, random.Random(f"{seed}/providers"), now, severities.keys()
    )
    provider_rows = people.experts(experts) + people.platforms(platforms, experts)
    conflicts = people.conflicts(firms.by_city)
    return DemoData(
        enterprises=enterprise_rows,
        requests=request_rows,
        providers=provider_rows,
        conflicts=conflicts,
        experts=experts,
        platforms=platforms,
    )
