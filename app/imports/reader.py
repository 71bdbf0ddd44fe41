"""Read an uploaded CSV or XLSX into (row number, {field: cell text}) pairs.

Row numbers are the ones a spreadsheet shows: the header is row 1, the first data row is 2.
CSV is read as UTF-8 (with or without BOM) and, failing that, as GB 18030 — what Excel on a
Chinese Windows saves by default. XLSX is read with openpyxl in read-only mode.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from app.errors import InvalidInput
from app.imports.columns import ImportColumn, Kind, Vocabulary, by_header

MAX_ROWS = 50_000
XLSX_MAGIC = b"PK\x03\x04"


@dataclass
class Table:
    columns: list[ImportColumn | None]  # None: a column we do not import (e.g. an export's ID)
    headers: list[str]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)

    @property
    def ignored(self) -> list[str]:
        return [h for h, c in zip(self.headers, self.columns, strict=True) if c is None and h]

    def records(self, vocab: Vocabulary) -> Iterator[tuple[int, dict[str, object]]]:
        """Non-empty cells by field name, as the API's JSON would carry them; an empty cell is
        as if the column were absent (the schema's default applies)."""
        for number, cells in self.rows:
            record = {
                c.field: c.parse(cell, vocab)
                for c, cell in zip(self.columns, cells, strict=False)
                if c is not None and cell != ""
            }
            yield number, record

    def header_of(self, field_name: str) -> str:
        for header, column in zip(self.headers, self.columns, strict=True):
            if column is not None and column.field == field_name:
                return header
        return field_name


def _cell(value: object) -> str:
    """Spreadsheet values as the text a person typed: 350582.0 → "350582", dates ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError:
            raise InvalidInput("the CSV is neither UTF-8 nor GB 18030 text", field="file") from None


def _csv_rows(data: bytes) -> Iterator[Sequence[object]]:
    yield from csv.reader(io.StringIO(_decode(data), newline=""))


def _xlsx_rows(data: bytes) -> Iterator[Sequence[object]]:
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise InvalidInput(f"the XLSX file cannot be read: {exc}", field="file") from None
    try:
        yield from book.worksheets[0].iter_rows(values_only=True)
    finally:
        book.close()


def read(kind: Kind, data: bytes) -> Table:
    if not data.strip():
        raise InvalidInput("the file is empty", field="file")
    source = _xlsx_rows(data) if data.startswith(XLSX_MAGIC) else _csv_rows(data)
    known = by_header(kind)
    header = next(source, None)
    if header is None:
        raise InvalidInput("the file has no header row", field="file")
    headers = [_cell(h) for h in header]
    table = Table(
        columns=[known.get(h.rstrip("*").strip().lower()) for h in headers], headers=headers
    )
    _check_header(kind, table)
    for number, raw in enumerate(source, start=2):
        cells = [_cell(v) for v in raw]
        if not any(cells):
            continue  # blank lines between blocks are common in hand-edited sheets
        if len(table.rows) >= MAX_ROWS:
            raise InvalidInput(f"at most {MAX_ROWS} rows per file; split it", field="file")
        table.rows.append((number, cells))
    return table


def _check_header(kind: Kind, table: Table) -> None:
    present = {c.field for c in table.columns if c is not None}
    seen: set[str] = set()
    for column in table.columns:
        if column is not None and column.field in seen:
            raise InvalidInput(f"column {column.zh} / {column.en} appears twice", field="file")
        if column is not None:
            seen.add(column.field)
    missing = [c for c in by_header(kind).values() if c.required and c.field not in present]
    if missing:
        names = ", ".join(sorted({f"{c.zh} ({c.en})" for c in missing}))
        raise InvalidInput(
            f"required columns missing: {names}; download the template", field="file"
        )
