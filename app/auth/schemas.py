from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from app.auth.passwords import MAX_LENGTH, MIN_LENGTH, password_problem
from app.common.schemas import InputSchema, Schema
from app.common.types import Email, RegionPrefix
from app.enterprises.schemas import EnterpriseCreate
from app.models import Role
from app.providers.schemas import ProviderCreate

Password = Field(
    min_length=MIN_LENGTH,
    max_length=MAX_LENGTH,
    description=f"At least {MIN_LENGTH} characters; not your e-mail, not a common password",
)


class _NewAccount(InputSchema):
    email: Email
    password: str = Password

    @model_validator(mode="after")
    def _password_rules(self) -> Self:
        problem = password_problem(self.password, email=self.email)
        if problem:
            raise ValueError(f"password: {problem}")
        return self


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
    version: int = Field(description="Send as If-Match when you edit the user")


class EnterpriseRegistration(_NewAccount):
    full_name: str = Field(min_length=1, max_length=100)
    enterprise: EnterpriseCreate


class ProviderRegistration(_NewAccount):
    full_name: str = Field(min_length=1, max_length=100)
    provider: ProviderCreate


class StaffCreate(_NewAccount):
    """Admins create coordinators (with their regions) and other admins."""

    full_name: str = Field(min_length=1, max_length=100)
    role: Role
    region_prefixes: list[RegionPrefix] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _staff_only(self) -> Self:
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
    """The e-mail rule is checked by the service, which knows whose password it is."""

    current_password: str = Field(max_length=MAX_LENGTH)
    new_password: str = Password

    @field_validator("new_password")
    @classmethod
    def _password_rules(cls, value: str) -> str:
        problem = password_problem(value)
        if problem:
            raise ValueError(problem)
        return value


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
