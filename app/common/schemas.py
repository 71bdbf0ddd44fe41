"""Shared API schema pieces: the base class, pages and the problem body."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)


class InputSchema(Schema):
    """Request bodies refuse unknown fields so a typo is a 422, not a silent no-op."""

    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True, extra="forbid")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class ProblemDetail(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = Field(default=None, description="The input field at fault, if any.")
    errors: list[FieldError] | None = None

    model_config = ConfigDict(extra="allow")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations so clients (and schemathesis) know errors are problem+json."""
    return {
        s: {"model": ProblemDetail, "content": {"application/problem+json": {}}} for s in statuses
    }


class StaffDecision(InputSchema):
    """A coordinator's approve/reject of something a user claimed; the reason is audited."""

    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=1, max_length=500)
