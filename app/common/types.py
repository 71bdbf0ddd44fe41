"""Annotated field types that validate standard codes where the input enters the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, Field, StringConstraints

from app.common import codes

Uscc = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=18, max_length=18),
    AfterValidator(codes.normalise_uscc),
    Field(description="Unified social credit code, 18 characters, GB 32100-2015 check character"),
]
RegionCode = Annotated[
    str,
    AfterValidator(codes.check_region_code),
    Field(description="6-digit administrative division code (GB/T 2260)", examples=["350582"]),
]
RegionPrefix = Annotated[
    str,
    AfterValidator(codes.check_region_prefix),
    Field(description="Province (2), city (4) or county (6) digits", examples=["35", "4101"]),
]
IndustryCode = Annotated[
    str,
    StringConstraints(max_length=5),
    AfterValidator(codes.check_industry_code),
    Field(description="GB/T 4754-2017 code: section letter + 2–4 digits", examples=["C17"]),
]


def _industry_prefix(value: str) -> str:
    return codes.check_industry_code(value, prefix_ok=True)


IndustryPrefix = Annotated[
    str,
    StringConstraints(max_length=5),
    AfterValidator(_industry_prefix),
    Field(examples=["C", "C17"]),
]
CategoryKey = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[a-z][a-z0-9_]{1,39}$"),
    Field(description="A taxonomy category key", examples=["financing"]),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(max_length=500)]
LongText = Annotated[str, StringConstraints(max_length=5000)]
Phone = Annotated[str, StringConstraints(max_length=30, pattern=r"^[0-9+\-() ]*$")]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    ),
]
OptionalEmail = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        max_length=254,
        pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$",
    ),
]

MAX_ID = 2**63 - 1  # BIGINT; larger numbers cannot name a row and must not reach the driver
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
RefId = Annotated[int, Field(ge=1, le=MAX_ID)]


EARLIEST_YEAR, LATEST_YEAR = 1900, 2999


def _utc_in_range(value: datetime) -> datetime:
    """Aware UTC inside a sane range: a year-1 date at +14:00 cannot even be shifted to UTC
    (Python overflows) and such values must be a 422, not a 500, on both databases."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is outside the range of dates this service handles") from exc
    if not EARLIEST_YEAR <= utc.year <= LATEST_YEAR:
        raise ValueError(f"must fall between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return utc


BoundedDateTime = Annotated[
    datetime,
    AfterValidator(_utc_in_range),
    Field(description=f"ISO 8601; naive means UTC; years {EARLIEST_YEAR}–{LATEST_YEAR}"),
]
