"""API shapes of match runs: the trigger, the run with its progress and statistics, the diff.

Weights enter as a plain object and are validated by constructing ``matching.Weights``, the
engine's own frozen dataclass, so the API can never accept a knob the engine would refuse
(or miss one it adds); a refusal is a 422 naming ``weights.<knob>``.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

import matching
from app.assignments.schemas import AssignmentRead, UnmatchedReasonRead
from app.common.schemas import InputSchema, Schema
from app.common.types import CategoryKey, RegionPrefix
from app.models import AssignmentStatus, MatchRunStatus

_KNOB = re.compile(r"weights\.([a-z_]+)")
WEIGHT_DEFAULTS = {f.name: f.default for f in dataclasses.fields(matching.Weights)}


def engine_weights(value: dict[str, Any]) -> matching.Weights:
    """The engine's validated weights; ``ValueError("<knob>: ...")`` names the knob at fault."""
    unknown = sorted(set(value) - set(WEIGHT_DEFAULTS))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown weight; known: {', '.join(WEIGHT_DEFAULTS)}")
    try:
        return matching.Weights(**value)
    except matching.InvalidProblem as exc:
        found = _KNOB.search(str(exc))
        raise ValueError(f"{found.group(1) if found else 'weights'}: {exc}") from exc


def _full_weights(value: dict[str, int | float]) -> dict[str, int | float]:
    """Every knob, defaults filled in, so a run records exactly what it was computed with."""
    return dataclasses.asdict(engine_weights(value))


Weights = Annotated[
    dict[str, int | float],
    AfterValidator(_full_weights),
    Field(
        description="Scoring weights and knobs of the engine; omitted ones take their default.",
        examples=[{"skill": 0.4, "text": 0.3, "fairness": 0.1}],
        json_schema_extra={"default_knobs": WEIGHT_DEFAULTS},
    ),
]


class MatchRunCreate(InputSchema):
    scope_region: RegionPrefix | Literal[""] = Field(
        default="", description="Region prefix the run decides; empty (all regions) is admin-only"
    )
    scope_categories: list[CategoryKey] = Field(default_factory=list, max_length=50)
    scope_request_ids: list[int] = Field(default_factory=list, max_length=10_000)
    weights: Weights = Field(default_factory=dict, validate_default=True)


class Shortage(Schema):
    category: str
    region: str
    level: str
    demand: int
    supply: int
    shortfall: int
    message_en: str
    message_zh: str


#: Unmatched reasons a run's statistics show inline; ``/diff?kind=unmatched`` pages them all.
UNMATCHED_SHOWN = 100


class MatchRunStats(Schema):
    """What a finished run reports (DOMAIN.md "Match run"); unknown keys are ignored."""

    requests: int = 0
    providers: int = 0
    pinned: int = 0
    candidate_pairs: int = 0
    matched: int = 0
    unmatched: int = 0
    unmatched_by_reason: dict[str, int] = Field(default_factory=dict)
    objective: float = 0.0
    bound: float = 0.0
    gap: float = 0.0
    seconds: dict[str, float] = Field(default_factory=dict, description="Wall time per stage")
    shortages: list[Shortage] = Field(default_factory=list)
    proposals: int = 0
    superseded_run_ids: list[int] = Field(default_factory=list)
    superseded_by_run_id: int | None = None
    left_out: dict[str, int] = Field(
        default_factory=dict,
        description="Requests of the scope the run did not decide, by why (e.g. untriaged)",
    )
    plans_to_prepare: int = Field(
        default=0,
        description="Plans whose milestones, policies and summaries this run's publish left "
        "to the worker (more than ZHUQI_PLAN_PREPARATION_INLINE_MAX); 0 when prepared inline",
    )
    replaced_stuck_run_ids: list[int] = Field(
        default_factory=list, description="Runs of the scope found stuck and failed by this one"
    )
    error: str = Field(default="", description="Why the run failed, when it did")
    failed_stage: str = ""
    unmatched_requests: list[UnmatchedReasonRead] = Field(
        default_factory=list,
        description=f"Why requests were left unmatched (the first {UNMATCHED_SHOWN} by request "
        "id; GET /match-runs/{id}/diff?kind=unmatched pages through all of them)",
    )

    short_teams: int = Field(
        default=0,
        description="Team requests the run served with fewer providers than they want (they "
        "stay triaged; GET /match-runs/{id}/advice names them with the unmatched ones)",
    )

    @field_validator("unmatched_requests", mode="before")
    @classmethod
    def _first_ones(cls, value: Any) -> Any:
        """A province run can leave thousands unmatched: the page stays small."""
        return value[:UNMATCHED_SHOWN] if isinstance(value, list) else value


class AdviceRead(Schema):
    """Where one more unit of capacity would help most (``GET /match-runs/{id}/advice``)."""

    rank: int = Field(description="1 = the cell where one more slot raises the optimum most")
    category: str
    region: str = Field(description="Region code prefix of the cell (city, 4 digits)")
    marginal_score: float | None = Field(
        description="Exact rise of the run's optimum if `provider_id` had one more slot for "
        "a request of the cell (its least dual price); null when no provider can take any of "
        "the cell's requests, so only recruiting helps"
    )
    provider_id: int | None = Field(description="The provider whose extra slot helps most")
    requests: int = Field(description="Requests of the cell left short of providers")
    request_ids: list[int] = Field(description="Their ids, sorted (at most 100)")
    with_candidates: int = Field(description="Of those, how many had candidates that were full")
    slots_needed: int = Field(description="Providers missing over those requests")
    providers_needed: int = Field(description="slots_needed over the cell's typical capacity")
    exact: bool
    message_zh: str
    message_en: str


class MatchRunRead(Schema):
    id: int
    created_by_id: int | None
    scope_region: str
    scope_categories: list[str]
    scope_request_ids: list[int]
    weights: dict[str, Any]
    status: MatchRunStatus
    stage: str
    progress: dict[str, Any]
    stats: MatchRunStats | None
    error: str
    attempts: int
    claimed_by: str
    lease_expires_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    published_at: datetime | None
    reverted_at: datetime | None
    plans_awaiting_preparation: int = Field(
        default=0,
        description="Of stats.plans_to_prepare, the plans the worker has not prepared yet",
    )
    version: int
    created_at: datetime
    updated_at: datetime

    @field_validator("stats", mode="before")
    @classmethod
    def _none_until_done(cls, value: Any) -> Any:
        """A queued or running run has no statistics yet: ``null``, not a row of zeros."""
        return value or None


ChangeKind = Literal["new", "same", "changed", "dropped", "unmatched"]


class DiffRow(Schema):
    """One request the run decided: what is live now against what the run proposes."""

    request_id: int
    kind: ChangeKind
    live_provider_id: int | None
    live_assignment_id: int | None
    live_status: AssignmentStatus | None
    proposed_provider_id: int | None
    proposed_assignment_id: int | None
    proposed_status: AssignmentStatus | None
    score: float | None
    locked: bool
    explanation_en: str
    explanation_zh: str
    unmatched: UnmatchedReasonRead | None = Field(
        default=None, description="The structured reason when the run leaves it unmatched"
    )
    live_team_provider_ids: list[int] = Field(
        default_factory=list, description="A team request's live providers (empty otherwise)"
    )
    proposed_team_provider_ids: list[int] = Field(
        default_factory=list, description="A team request's proposed providers (empty otherwise)"
    )


class MatchRunDiff(Schema):
    run_id: int
    counts: dict[str, int] = Field(description="Rows per change kind (before filtering)")
    items: list[DiffRow]
    next_cursor: str | None = None


class PublishResult(Schema):
    run: MatchRunRead
    offered: list[int] = Field(description="The assignments now offered to their providers")
    plan_ids: list[int] = Field(description="The enterprises' plans created or updated")


class RevertResult(Schema):
    run: MatchRunRead
    withdrawn: list[int] = Field(description="Assignments withdrawn (nobody had accepted them)")
    kept: list[AssignmentRead] = Field(description="Accepted or later: they stay")
