from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.common.schemas import InputSchema, Schema
from app.common.types import CategoryKey
from app.models import Severity


class CategoryCreate(InputSchema):
    key: CategoryKey
    name_zh: str = Field(min_length=1, max_length=50)
    name_en: str = Field(min_length=1, max_length=80)
    default_severity: Severity = Severity.ORDINARY


class CategoryUpdate(InputSchema):
    """Names, default severity and the "13710" clocks (days) of a category."""

    name_zh: str | None = Field(default=None, min_length=1, max_length=50)
    name_en: str | None = Field(default=None, min_length=1, max_length=80)
    default_severity: Severity | None = None
    route_days: int | None = Field(default=None, ge=1, le=365)
    first_feedback_days: int | None = Field(default=None, ge=1, le=365)
    resolve_days_ordinary: int | None = Field(default=None, ge=1, le=365)
    resolve_days_major: int | None = Field(default=None, ge=1, le=365)


class CategoryRead(Schema):
    key: str
    name_zh: str
    name_en: str
    default_severity: Severity
    route_days: int
    first_feedback_days: int
    resolve_days_ordinary: int
    resolve_days_major: int
    version: int = Field(description="Send as If-Match when you edit it")


class TemplateStep(InputSchema):
    """One milestone a plan gets for each request of the category.

    It falls due ``after_days`` working days after the category's ``clock`` runs out,
    counted from the day the request is offered (a later step is never due before an
    earlier one); ``owner`` is the request's provider or the coordinator.
    """

    title_zh: str = Field(min_length=1, max_length=200)
    title_en: str = Field(min_length=1, max_length=200)
    owner: Literal["provider", "coordinator"] = "provider"
    clock: Literal["route", "first_feedback", "resolve"] = "resolve"
    after_days: int = Field(default=0, ge=0, le=250, description="Working days after the clock")


class MilestoneTemplateRead(Schema):
    id: int
    category_key: str
    steps: list[TemplateStep]
    version: int = Field(description="Send as If-Match when you edit it")
    updated_at: datetime


class MilestoneTemplateUpdate(InputSchema):
    """The whole list of steps, in order (an empty list: no milestones for this category)."""

    steps: list[TemplateStep] = Field(max_length=20)
