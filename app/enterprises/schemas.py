from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.common.principal import Principal
from app.common.schemas import InputSchema, Schema
from app.common.types import (
    IndustryCode,
    LongText,
    Name,
    OptionalEmail,
    Phone,
    RegionCode,
    Uscc,
)
from app.models import Enterprise, EnterpriseSize, Tier


class EnterpriseCreate(InputSchema):
    name: Name
    uscc: Uscc
    region_code: RegionCode
    industry_code: IndustryCode
    size: EnterpriseSize
    tier: Tier = Field(
        default=Tier.NONE,
        description="Set by staff; at self-registration it is a claim a coordinator verifies",
    )
    headcount: int | None = Field(default=None, ge=0, le=1_000_000)
    description: LongText = ""
    contact_name: str = Field(default="", max_length=100)
    contact_phone: Phone = ""
    contact_email: OptionalEmail = ""


class EnterpriseUpdate(InputSchema):
    """Every field optional; only the fields sent are changed. The USCC never changes."""

    name: Name | None = None
    region_code: RegionCode | None = None
    industry_code: IndustryCode | None = None
    size: EnterpriseSize | None = None
    tier: Tier | None = Field(
        default=None, description="Staff set it; the enterprise's own change is a claim"
    )
    headcount: int | None = Field(default=None, ge=0, le=1_000_000)
    description: LongText | None = None
    contact_name: str | None = Field(default=None, max_length=100)
    contact_phone: Phone | None = None
    contact_email: OptionalEmail | None = None


class EnterpriseRead(Schema):
    id: int
    name: str
    uscc: str
    region_code: str
    industry_code: str
    size: EnterpriseSize
    tier: Tier = Field(description="The verified tier: policy eligibility and priority use it")
    claimed_tier: Tier | None = Field(description="A tier claimed and waiting for verification")
    tier_reason: str
    tier_verified_at: datetime | None
    headcount: int | None
    description: str
    contact_name: str
    contact_phone: str
    contact_email: str
    version: int
    created_at: datetime
    updated_at: datetime


class EnterpriseContact(Schema):
    """What a provider serving the enterprise needs: who and where it is, whom to call."""

    id: int
    name: str
    region_code: str
    industry_code: str
    size: EnterpriseSize
    description: str
    contact_name: str
    contact_phone: str
    contact_email: str


EnterpriseView = EnterpriseRead | EnterpriseContact


def enterprise_view_model(principal: Principal) -> type[EnterpriseRead] | type[EnterpriseContact]:
    """Providers get the contact card; the enterprise itself and staff the whole record."""
    return EnterpriseContact if principal.is_provider else EnterpriseRead


def enterprise_view(principal: Principal, enterprise: Enterprise) -> EnterpriseView:
    return enterprise_view_model(principal).model_validate(enterprise)
