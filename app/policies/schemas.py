from __future__ import annotations

from datetime import date, datetime

from pydantic import Field, model_validator

from app.common.schemas import InputSchema, Schema
from app.common.types import CategoryKey, IndustryPrefix, LongText, Name, RegionPrefix
from app.models import EnterpriseSize, Tier


class _Validity(InputSchema):
    valid_from_date: date | None = None
    valid_until_date: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Validity:
        if (
            self.valid_from_date
            and self.valid_until_date
            and self.valid_until_date < self.valid_from_date
        ):
            raise ValueError("valid_until_date: must not be before valid_from_date")
        return self


class PolicyCreate(_Validity):
    """Eligibility lists left empty mean "any"."""

    title: Name
    summary: LongText = ""
    issuer: str = Field(default="", max_length=200)
    url: str = Field(default="", max_length=500, pattern=r"^$|^https?://")
    tiers: list[Tier] = Field(default_factory=list)
    sizes: list[EnterpriseSize] = Field(default_factory=list)
    industry_prefixes: list[IndustryPrefix] = Field(default_factory=list, max_length=50)
    region_prefixes: list[RegionPrefix] = Field(default_factory=list, max_length=100)
    categories: list[CategoryKey] = Field(default_factory=list, max_length=20)


class PolicyUpdate(_Validity):
    title: Name | None = None
    summary: LongText | None = None
    issuer: str | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=500, pattern=r"^$|^https?://")
    tiers: list[Tier] | None = None
    sizes: list[EnterpriseSize] | None = None
    industry_prefixes: list[IndustryPrefix] | None = Field(default=None, max_length=50)
    region_prefixes: list[RegionPrefix] | None = Field(default=None, max_length=100)
    categories: list[CategoryKey] | None = Field(default=None, max_length=20)


class PolicyRead(Schema):
    id: int
    title: str
    summary: str
    issuer: str
    url: str
    tiers: list[str]
    sizes: list[str]
    industry_prefixes: list[str]
    region_prefixes: list[str]
    categories: list[str]
    valid_from_date: date | None
    valid_until_date: date | None
    version: int
    created_at: datetime
    updated_at: datetime
