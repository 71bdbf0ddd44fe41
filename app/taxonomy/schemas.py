from __future__ import annotations

from pydantic import Field

from app.common.schemas import InputSchema, Schema
from app.common.types import CategoryKey
from app.models import Severity


class CategoryCreate(InputSchema):
    key: CategoryKey
    name_zh: str = Field(min_length=1, max_length=50)
    name_en: str = Field(min_length=1, max_length=80)
    default_severity: Severity = Severity.ORDINARY


class CategoryRead(Schema):
    key: str
    name_zh: str
    name_en: str
    default_severity: Severity
