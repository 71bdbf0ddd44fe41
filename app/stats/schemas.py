"""Response shape of ``GET /stats``: one block for the total, the same block per group.

Groups are a page, like every list of the API: ``limit`` and ``cursor`` in, ``next_cursor``
and ``total_groups`` out (``total`` was already the figures' total block, hence the name).

Rates are ``null`` when they have no denominator (nothing answered, settled or rated yet),
so a dashboard can tell "no data" from "0 %".
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from app.common.schemas import Schema


class GroupBy(StrEnum):
    REGION = "region"
    CATEGORY = "category"
    TIER = "tier"
    PROVIDER = "provider"


class Funnel(Schema):
    """How far requests got. Grouped by provider, a unit is a request offered to that
    provider and every step after ``matched`` counts that provider's own assignments."""

    submitted: int = Field(description="Requests created (by provider: offered to it).")
    matched: int = Field(description="Requests that ever got an offer.")
    accepted: int = Field(description="Requests with an offer that was ever accepted.")
    first_follow_up: int = Field(
        description="Requests with at least one follow-up logged against one of its assignments."
    )
    resolved: int = Field(
        description="Requests now resolved (by provider: resolved through work it completed "
        "and that was not rated unsatisfied)."
    )


class Durations(Schema):
    """Median and mean in hours, over the ``count`` units that reached the step."""

    count: int
    median: float | None
    mean: float | None


class Satisfaction(Schema):
    feedback: int = Field(description="Ratings given.")
    mean_rating: float | None = Field(description="Mean rating, 1–5.")
    satisfied_share: float | None = Field(description="Share of ratings marked satisfied.")


class Rates(Schema):
    offers_answered: int = Field(
        description="Offers that were accepted, declined or expired (pending and withdrawn "
        "offers have no answer)."
    )
    offers_accepted: int = Field(description="Answered offers that were accepted.")
    acceptance_rate: float | None = Field(description="offers_accepted / offers_answered.")
    settled: int = Field(
        description="Requests resolved or declared unresolvable; withdrawn ones are not "
        "counted (by provider: only requests it accepted)."
    )
    resolution_rate: float | None = Field(description="resolved / settled.")
    satisfaction: Satisfaction


class Load(Schema):
    """Open assignments (offered, accepted, active) against capacity, right now."""

    providers: int
    capacity: int
    open_assignments: int
    utilisation: float | None = Field(description="open_assignments / capacity.")


class StatsGroup(Schema):
    key: str | None = Field(
        description="Group key: 4-digit city code, category key, tier or provider id; "
        "null for the total."
    )
    label: str | None = Field(default=None, description="Provider name, for provider groups.")
    funnel: Funnel
    time_to_match_hours: Durations = Field(
        description="From request creation to its first offer, over matched requests."
    )
    time_to_resolution_hours: Durations = Field(
        description="From request creation to resolution, over resolved requests."
    )
    rates: Rates
    load: Load | None = Field(
        description="The total: active providers serving the scope (and the category "
        "filter); a provider group: that provider. Null for other groups."
    )


class StatsRead(Schema):
    scope: list[str] | None = Field(
        description="Region prefixes the numbers cover; null means everywhere."
    )
    group_by: GroupBy | None
    generated_at: datetime
    total: StatsGroup
    groups: list[StatsGroup] = Field(
        description="One page of groups in key order (provider id, else the key's text); "
        "empty without group_by."
    )
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` (with the same group_by and filters) for the next page "
        "of groups; null on the last page.",
    )
    total_groups: int | None = Field(
        default=None, description="How many groups there are over all pages; null without group_by."
    )
