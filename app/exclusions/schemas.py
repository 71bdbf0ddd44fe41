from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from app.common.schemas import InputSchema, Schema
from app.common.types import RefId


class ExclusionCreate(InputSchema):
    """Forbid a provider for one request, or for every request of an enterprise."""

    provider_id: RefId
    request_id: RefId | None = None
    enterprise_id: RefId | None = None
    reason: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _one_target(self) -> ExclusionCreate:
        if (self.request_id is None) == (self.enterprise_id is None):
            raise ValueError("request_id: give exactly one of request_id and enterprise_id")
        return self


class ExclusionRead(Schema):
    id: int
    provider_id: int
    request_id: int | None
    enterprise_id: int | None
    reason: str
    created_by_id: int | None
    created_at: datetime
