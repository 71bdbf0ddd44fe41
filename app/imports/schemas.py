from __future__ import annotations

from pydantic import Field

from app.common.schemas import Schema
from app.imports.columns import Kind


class ImportReport(Schema):
    kind: Kind
    rows: int = Field(description="Data rows read (blank lines skipped).")
    created: int
    updated: int = Field(description="Stored records whose values the file changed.")
    unchanged: int = Field(description="Rows already stored as they are (a re-import).")
    ignored_columns: list[str] = Field(description="Headers not imported (e.g. an export's ID).")
    seconds: float
