from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from app.common.schemas import InputSchema, Schema
from app.common.types import RefId
from app.models import AssignmentOrigin, AssignmentStatus

DeclineReason = Literal[
    "no_capacity", "outside_expertise", "conflict_of_interest", "too_far", "unavailable", "other"
]


class UnmatchedReasonRead(Schema):
    """Why a request was left without a provider: the hard rule, the providers each rule
    removed, and (rule ``capacity_taken``) the requests holding its candidates' slots."""

    request_id: int
    reason: str = Field(
        description="category, inactive, capacity, region, conflict, "
        "excluded, min_score, capacity_taken or rematch_failed (the worker gave up "
        "re-matching it after repeated failures)"
    )
    removed: dict[str, int] = Field(default_factory=dict, description="Providers per rule")
    taken_by: list[int] = Field(
        default_factory=list, description="Requests that took the capacity (best first)"
    )
    message_zh: str = ""
    message_en: str = ""


class RequestUnmatchedRead(UnmatchedReasonRead):
    """A request's reason with where it came from."""

    source: Literal["run", "rematch"]
    match_run_id: int | None = None
    decided_at: datetime


class ExplanationRead(Schema):
    """Why this pair (features × weights and a one-line reason): what the provider and the
    enterprise of the pair see. Competitors (runners-up) are not part of it."""

    features: dict[str, float] = Field(default_factory=dict)
    contributions: dict[str, float] = Field(default_factory=dict)
    priority: float | None = None
    slot_multiplier: float | None = None
    reason_zh: str = ""
    reason_en: str = ""
    note: str = Field(default="", description="The coordinator's note on a hand-made offer")


class AssignmentReadForParty(Schema):
    """An assignment as its provider or its enterprise reads it: no draft run, no pin, no
    runners-up (other providers' ids and scores are staff business)."""

    id: int
    request_id: int
    provider_id: int
    origin: AssignmentOrigin
    status: AssignmentStatus
    score: float
    breakdown: ExplanationRead
    offered_at: datetime | None
    offer_expires_at: datetime | None
    responded_at: datetime | None
    decline_reason_code: str
    decline_reason: str
    completed_at: datetime | None
    completion_summary: str = Field(description="What the provider said was done")
    version: int
    created_at: datetime
    updated_at: datetime


class AssignmentRead(Schema):
    """An assignment as staff read it, with the whole stored explanation (runners-up too)."""

    id: int
    request_id: int
    provider_id: int
    match_run_id: int | None
    origin: AssignmentOrigin
    status: AssignmentStatus
    score: float
    breakdown: dict[str, Any]
    locked: bool
    offered_at: datetime | None
    offer_expires_at: datetime | None
    responded_at: datetime | None
    decline_reason_code: str
    decline_reason: str
    completed_at: datetime | None
    completion_summary: str = Field(description="What the provider said was done")
    version: int
    created_at: datetime
    updated_at: datetime


class Decline(InputSchema):
    reason_code: DeclineReason
    reason: str = Field(default="", max_length=1000)


class Complete(InputSchema):
    summary: str = Field(default="", max_length=2000, description="What was done")


OverridableRule = Literal["region", "min_score"]


class _Override(InputSchema):
    override_rules: list[OverridableRule] = Field(
        default_factory=list,
        max_length=2,
        description="Hard rules the coordinator overrides (region, min_score only); audited",
    )
    override_reason: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _reason_required(self) -> Self:
        if self.override_rules and not self.override_reason.strip():
            raise ValueError("override_reason: overriding a hard rule needs a reason")
        return self


class ManualAssign(_Override):
    request_id: RefId
    provider_id: RefId
    note: str = Field(default="", max_length=500)


class Reassign(_Override):
    provider_id: RefId | None = Field(
        default=None, description="The new provider; omit to let the engine pick the best one"
    )
    reason: str = Field(default="", max_length=500)


class Lock(InputSchema):
    locked: bool = True


class FeedbackCreate(InputSchema):
    rating: int = Field(ge=1, le=5)
    satisfied: bool
    comment: str = Field(default="", max_length=2000)


class FeedbackRead(Schema):
    id: int
    assignment_id: int
    rating: int
    satisfied: bool
    comment: str
    created_at: datetime
