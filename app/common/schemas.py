"""Shared API schema pieces: the base class, pages and the problem body."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.common.edges import no_control_chars

T = TypeVar("T")


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)


class InputSchema(Schema):
    """Request bodies refuse unknown fields so a typo is a 422, not a silent no-op."""

    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        """NUL and other control characters are refused in every string, on both databases.

        PostgreSQL cannot store NUL in text and SQLite silently would (inside e-mails too), so
        one check here, naming the field, keeps the two backends answering alike.
        """
        _check_strings(value)
        return value


def _check_strings(value: Any) -> None:
    if isinstance(value, str):
        no_control_chars(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_strings(item)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )
    total: int | None = Field(
        default=None, description="How many items match over all pages, where the list counts"
    )
    total_capped: bool = Field(
        default=False,
        description=(
            "True when counting stopped at the server's cap (`ZHUQI_LIST_COUNT_CAP`): "
            "`total` is then a lower bound, at least that many match"
        ),
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
