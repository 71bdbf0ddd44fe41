from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field, model_validator

from app.common.schemas import InputSchema, Schema
from app.common.types import Email, RegionPrefix
from app.enterprises.schemas import EnterpriseCreate
from app.models import Role
from app.providers.schemas import ProviderCreate

Password = Field(min_length=8, max_length=128, description="At least 8 characters")


class LogInForm(InputSchema):
    """The OAuth2 password form (``username`` is the e-mail); other OAuth2 fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    username: str = Field(max_length=254, description="Your e-mail")
    password: str = Field(max_length=128)


class Token(Schema):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime


class UserRead(Schema):
    id: int
    email: str
    full_name: str
    role: Role
    region_prefixes: list[str]
    enterprise_id: int | None
    provider_id: int | None
    is_active: bool
    created_at: datetime


class EnterpriseRegistration(InputSchema):
    email: Email
    password: str = Password
    full_name: str = Field(min_length=1, max_length=100)
    enterprise: EnterpriseCreate


class ProviderRegistration(InputSchema):
    email: Email
    password: str = Password
    full_name: str = Field(min_length=1, max_length=100)
    provider: ProviderCreate


class StaffCreate(InputSchema):
    """Admins create coordinators (with their regions) and other admins."""

    email: Email
    password: str = Password
    full_name: str = Field(min_length=1, max_length=100)
    role: Role
    region_prefixes: list[RegionPrefix] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _staff_only(self) -> StaffCreate:
        if self.role not in (Role.COORDINATOR, Role.ADMIN):
            raise ValueError("role: enterprises and providers register themselves")
        if self.role == Role.COORDINATOR and not self.region_prefixes:
            raise ValueError("region_prefixes: a coordinator needs at least one region")
        return self


class UserUpdate(InputSchema):
    full_name: str | None = Field(default=None, min_length=1, max_length=100)
    region_prefixes: list[RegionPrefix] | None = Field(default=None, max_length=50)
    is_active: bool | None = None


class PasswordChange(InputSchema):
    current_password: str = Field(max_length=128)
    new_password: str = Password


class ApiKeyCreate(InputSchema):
    name: str = Field(min_length=1, max_length=100)


class ApiKeyRead(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The full key. It is shown only this once; store it safely.")
