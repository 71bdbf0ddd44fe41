from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from app.common.schemas import InputSchema, Schema

ConceptId = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,59}$"), Field(examples=["late_payment"])
]
ZhTerm = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]
EnTerm = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, min_length=2, max_length=60, pattern=r"^[ -~]+$"
    ),
]


class GlossaryEntryCreate(InputSchema):
    concept: ConceptId = Field(
        description="A shipped concept id to add terms to, or a new one (lower-case key)"
    )
    zh: list[ZhTerm] = Field(default_factory=list, max_length=50, examples=[["压款", "押款"]])
    en: list[EnTerm] = Field(default_factory=list, max_length=50, examples=[["late payment"]])

    @model_validator(mode="after")
    def _some_term(self) -> Self:
        if not self.zh and not self.en:
            raise ValueError("give at least one Chinese or English term")
        return self


class GlossaryEntryUpdate(InputSchema):
    """New term lists (each replaces the old one when given)."""

    zh: list[ZhTerm] | None = Field(default=None, max_length=50)
    en: list[EnTerm] | None = Field(default=None, max_length=50)


class GlossaryEntryRead(Schema):
    id: int
    concept: str
    zh: list[str]
    en: list[str]
    extends_shipped: bool = Field(
        default=False, description="Whether it adds terms to a concept of the shipped glossary"
    )
    version: int = Field(description="Send as If-Match when you edit it")
    created_at: datetime
    updated_at: datetime
