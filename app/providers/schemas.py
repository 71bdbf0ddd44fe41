from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import Field, model_validator

from app.common.principal import Principal
from app.common.schemas import InputSchema, Schema
from app.common.types import (
    CategoryKey,
    IndustryPrefix,
    LongText,
    Name,
    OptionalEmail,
    Phone,
    RegionCode,
    RegionPrefix,
    Uscc,
)
from app.models import Provider, ProviderKind, Vetting

SkillLevel = Annotated[int, Field(ge=1, le=3, description="1 basic, 2 experienced, 3 expert")]
Skills = Annotated[
    dict[CategoryKey, SkillLevel],
    Field(min_length=1, max_length=20, description="Category key → level 1–3"),
]
Capacity = Annotated[
    int, Field(ge=0, le=10_000, description="How many assignments it can carry at once")
]


class _PauseDates(InputSchema):
    paused_from_date: date | None = None
    paused_until_date: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _PauseDates:
        start, end = self.paused_from_date, self.paused_until_date
        if start and end and end < start:
            raise ValueError("paused_until_date: must not be before paused_from_date")
        return self


class ProviderCreate(_PauseDates):
    kind: ProviderKind
    name: Name
    organisation: str = Field(default="", max_length=200)
    expertise: LongText = ""
    skills: Skills
    industries: list[IndustryPrefix] = Field(default_factory=list, max_length=50)
    regions: list[RegionPrefix] = Field(
        default_factory=list, max_length=100, description="Region prefixes served; empty = anywhere"
    )
    home_region_code: RegionCode | None = None
    remote_ok: bool = False
    capacity: Capacity = 1
    contact_email: OptionalEmail = ""
    contact_phone: Phone = ""


class ProviderUpdate(_PauseDates):
    name: Name | None = None
    organisation: str | None = Field(default=None, max_length=200)
    expertise: LongText | None = None
    skills: Skills | None = None
    industries: list[IndustryPrefix] | None = Field(default=None, max_length=50)
    regions: list[RegionPrefix] | None = Field(default=None, max_length=100)
    home_region_code: RegionCode | None = None
    remote_ok: bool | None = None
    capacity: Capacity | None = None
    active: bool | None = Field(default=None, description="Coordinators and admins only")
    contact_email: OptionalEmail | None = None
    contact_phone: Phone | None = None


class ProviderRead(Schema):
    id: int
    kind: ProviderKind
    name: str
    organisation: str
    expertise: str
    skills: dict[str, int]
    industries: list[str]
    regions: list[str]
    home_region_code: str | None
    remote_ok: bool
    capacity: int
    active: bool
    paused_from_date: date | None
    paused_until_date: date | None
    rating: float | None
    rating_count: int
    contact_email: str
    contact_phone: str
    vetting: Vetting
    vetting_reason: str
    vetted_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class ProviderCard(Schema):
    """A provider as the enterprise it serves reads it: who helps and how to reach them, not
    its capacity, load, coverage or vetting record."""

    id: int
    kind: ProviderKind
    name: str
    organisation: str
    expertise: str
    rating: float | None
    rating_count: int
    contact_email: str
    contact_phone: str


ProviderView = ProviderRead | ProviderCard


def provider_view_model(principal: Principal) -> type[ProviderRead] | type[ProviderCard]:
    """An enterprise reads the card of a provider serving it; staff and providers the record."""
    return ProviderCard if principal.is_enterprise else ProviderRead


def provider_view(principal: Principal, provider: Provider) -> ProviderView:
    return provider_view_model(principal).model_validate(provider)


class ConflictCreate(InputSchema):
    uscc: Uscc
    reason: str = Field(default="", max_length=500)


class ConflictRead(Schema):
    provider_id: int
    enterprise_id: int
    reason: str
    created_at: datetime
