"""What checking a file produces: the rows to insert, the changes to apply, or the errors.

Every check a row gets is the API's: its pydantic create schema (USCC check character via
python-stdnum, region and industry codes, lengths, ranges) and the services' own rules
(region scope of the caller, known categories, dates), so a file can store nothing the API
would have refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app.imports.reader import Table

M = TypeVar("M", bound=BaseModel)
_MODEL_LEVEL_FIELD = re.compile(r"^(?:Value error, )?([a-z_][a-z0-9_]*): ")


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    field: str
    message: str
    type: str = "invalid"

    def as_problem(self) -> dict[str, object]:
        return {
            "row": self.row,
            "column": self.column,
            "field": self.field,
            "message": self.message,
            "type": self.type,
        }


@dataclass(frozen=True)
class Update:
    id: int
    changes: dict[str, Any]
    before: dict[str, Any]
    region_code: str


@dataclass(frozen=True)
class Insert:
    values: dict[str, Any]
    region_code: str


@dataclass
class Batch:
    """The outcome of checking a whole file; written only when ``errors`` is empty."""

    table: Table
    errors: list[RowError] = field(default_factory=list)
    inserts: list[Insert] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    unchanged: int = 0

    def fail(self, row: int, field_name: str, message: str, type_: str = "invalid") -> None:
        column = self.table.header_of(field_name)
        self.errors.append(RowError(row, column, field_name, message, type_))


def validated(batch: Batch, row: int, model: type[M], record: Mapping[str, Any]) -> M | None:
    """The API's schema on one row; its errors are filed against the row's columns."""
    try:
        return model.model_validate(dict(record))
    except ValidationError as exc:
        for error in exc.errors():
            loc = [str(p) for p in error["loc"]]
            match = _MODEL_LEVEL_FIELD.match(str(error.get("msg", "")))
            name = loc[0] if loc else (match.group(1) if match else "")
            batch.fail(row, name, error["msg"], error["type"])
        return None


def first_seen(batch: Batch, seen: dict[Any, int], key: Any, row: int, field_name: str) -> bool:
    """False (and an error) when the same natural key came earlier in the file."""
    if key in seen:
        batch.fail(row, field_name, f"duplicate of row {seen[key]}", "duplicate")
        return False
    seen[key] = row
    return True


def changes_of(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """Only what differs: importing the same file twice changes nothing the second time."""
    return {k: v for k, v in wanted.items() if existing.get(k) != v}
