from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import Field

from app.assignments.schemas import AssignmentRead, AssignmentReadForParty
from app.common.schemas import InputSchema, Schema
from app.common.types import BoundedDateTime, RefId
from app.enterprises.schemas import EnterpriseContact
from app.models import FollowUpKind, PlanStatus
from app.requests.schemas import HelpRequestRead


class PlanRead(Schema):
    id: int
    enterprise_id: int
    status: PlanStatus
    summary: str = Field(description="In Chinese; generated unless summary_edited")
    summary_en: str
    summary_edited: bool = Field(description="A coordinator wrote the summary; kept as is")
    recommended_policies: list[dict[str, Any]]
    closed_at: datetime | None
    preparing: bool = Field(
        default=False,
        description="True while the worker still prepares the milestones, policies and "
        "summary a large publish left to it (seconds); until then they may be empty",
    )
    version: int
    created_at: datetime
    updated_at: datetime


class MilestoneRead(Schema):
    id: int
    plan_id: int
    request_id: int | None = Field(description="The request whose template made it, if any")
    position: int
    title: str = Field(description="In Chinese")
    title_en: str
    owner_role: str = Field(description="provider, coordinator, or empty for a free milestone")
    owner_provider_id: int | None
    owner: str
    due_date: date | None = Field(
        description="Local date; null when not set or beyond the holiday calendar's known years"
    )
    done: bool
    done_at: datetime | None
    version: int = Field(description="Send as If-Match to mark it done or reopen it")


class FollowUpRead(Schema):
    id: int
    plan_id: int
    assignment_id: int | None
    author_id: int | None
    kind: FollowUpKind
    occurred_at: datetime
    notes: str
    progress: int
    next_follow_up_date: date | None
    created_at: datetime


class PlanDetail(PlanRead):
    """The whole one-company-one-policy picture as staff read it: requests, who helps with
    what and why (runners-up included), milestones and follow-ups."""

    requests: list[HelpRequestRead]
    assignments: list[AssignmentRead]
    milestones: list[MilestoneRead]
    follow_ups: list[FollowUpRead]


class PlanDetailForEnterprise(PlanRead):
    """The enterprise's own plan: everything in it, explanations without competitors."""

    requests: list[HelpRequestRead]
    assignments: list[AssignmentReadForParty]
    milestones: list[MilestoneRead]
    follow_ups: list[FollowUpRead]


class PlanReadForProvider(Schema):
    """A plan as a provider working on it reads it: which plan, whose, in what state — not
    the summary or the policies of the enterprise's whole picture (its detail lists only the
    milestones of the requests it serves)."""

    id: int
    enterprise_id: int
    status: PlanStatus
    closed_at: datetime | None
    preparing: bool = Field(
        default=False,
        description="True while the worker still prepares the milestones, policies and "
        "summary a large publish left to it (seconds); until then they may be empty",
    )
    version: int
    created_at: datetime
    updated_at: datetime


class PlanDetailForProvider(PlanReadForProvider):
    """Only the parts of the plan that concern the provider's own assignments, and whom to
    contact."""

    enterprise: EnterpriseContact
    requests: list[HelpRequestRead]
    assignments: list[AssignmentReadForParty]
    milestones: list[MilestoneRead] = Field(description="The steps of the requests it serves")
    follow_ups: list[FollowUpRead]


class PlanUpdate(InputSchema):
    summary: str | None = Field(default=None, max_length=10_000, description="Chinese")
    summary_en: str | None = Field(default=None, max_length=10_000)
    summary_edited: bool | None = Field(
        default=None,
        description="false (with no summary in the body) hands the summary back to the "
        "generator; writing a summary sets it",
    )


class MilestoneCreate(InputSchema):
    title: str = Field(min_length=1, max_length=200)
    title_en: str = Field(default="", max_length=200)
    owner: str = Field(default="", max_length=100)
    due_date: date | None = None


class MilestoneUpdate(InputSchema):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    title_en: str | None = Field(default=None, max_length=200)
    owner: str | None = Field(default=None, max_length=100)
    due_date: date | None = None
    done: bool | None = None


class FollowUpCreate(InputSchema):
    assignment_id: RefId | None = Field(default=None, description="Required for providers")
    kind: FollowUpKind
    occurred_at: BoundedDateTime | None = Field(default=None, description="Defaults to now")
    notes: str = Field(default="", max_length=5000)
    progress: int = Field(default=0, ge=0, le=100, description="Per cent done")
    next_follow_up_date: date | None = None
