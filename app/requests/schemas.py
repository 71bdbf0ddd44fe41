from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from app.assignments.schemas import RequestUnmatchedRead
from app.common.schemas import InputSchema, Schema
from app.common.types import CategoryKey, LongText, RefId
from app.models import CategorySource, RequestStatus, Severity

Title = Field(min_length=2, max_length=200)
Urgency = Field(ge=1, le=5, description="1 can wait … 5 the business is at stake")
TEAM_DESCRIPTION = (
    "How many distinct providers should serve the request together (a team, e.g. a lawyer "
    "and a financing expert for one restructuring); 1–5"
)


class HelpRequestCreate(InputSchema):
    enterprise_id: RefId | None = Field(
        default=None, description="Required for staff; enterprises file for themselves"
    )
    category: CategoryKey | None = Field(
        default=None,
        description="Leave out to file under the top suggestion (category_source 'suggested')",
    )
    extra_categories: list[CategoryKey] | None = Field(
        default=None,
        max_length=3,
        description="Secondary categories; left out, they are suggested like the category",
    )
    title: str = Title
    description: LongText = ""
    urgency: int = Urgency
    providers_wanted: int = Field(default=1, ge=1, le=5, description=TEAM_DESCRIPTION)
    severity: Severity | None = Field(default=None, description="Defaults from the category")
    wanted_by_date: date | None = None


class HelpRequestUpdate(InputSchema):
    category: CategoryKey | None = None
    extra_categories: list[CategoryKey] | None = Field(default=None, max_length=3)
    title: str | None = Field(default=None, min_length=2, max_length=200)
    description: LongText | None = None
    urgency: int | None = Field(default=None, ge=1, le=5)
    providers_wanted: int | None = Field(default=None, ge=1, le=5, description=TEAM_DESCRIPTION)
    severity: Severity | None = None
    wanted_by_date: date | None = None


class HelpRequestRead(Schema):
    id: int
    enterprise_id: int
    category: str
    category_source: CategorySource
    extra_categories: list[str]
    title: str
    description: str
    urgency: int
    providers_wanted: int
    severity: Severity
    wanted_by_date: date | None
    status: RequestStatus
    plan_id: int | None
    resolved_at: datetime | None
    rematch_pending: bool = Field(
        default=False,
        description="A provider declined (or the request was reopened) and the worker is about "
        "to offer it to the next provider; false once it has (or found none)",
    )
    version: int
    created_at: datetime
    updated_at: datetime


class HelpRequestDetail(HelpRequestRead):
    """One request with why it is unmatched, if it is."""

    unmatched: list[RequestUnmatchedRead] = Field(
        default_factory=list,
        description="Why the latest match run (source 'run') and the latest re-match (source "
        "'rematch') left it without a provider; empty once each found one. Only staff see "
        "which other requests took the capacity.",
    )


class SuggestCategoryIn(InputSchema):
    text: str = Field(min_length=1, max_length=5000, description="The problem, in any words")


class CategorySuggestionRead(Schema):
    category: str
    score: float = Field(description="Probability in [0, 1]; the list sums to about 1")
    label_zh: str
    label_en: str
    evidence: list[str] = Field(description="Words or phrases of the text that drove it")


class SuggestCategoryRead(Schema):
    suggestions: list[CategorySuggestionRead]
