"""Run an import: read, check every row, then write everything or nothing.

Writes are set-based (one INSERT per table with RETURNING, executemany UPDATEs, one INSERT
of audit events) inside the caller's transaction, which the caller commits: a file with a
single bad row raises ``ImportRejected`` before anything is written, and a failure while
writing rolls everything back with the transaction. Services flush, never commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy.orm import Session

from app.common.bulk import refresh_planner_statistics
from app.common.clock import utc_now
from app.common.principal import Principal
from app.errors import AppError, Forbidden
from app.exports.labels import Lang
from app.imports import enterprises, providers, reader, repository, requests
from app.imports.columns import COLUMNS, Kind, Vocabulary, vocabulary
from app.imports.reader import Table
from app.imports.rows import Batch
from app.imports.schemas import ImportReport
from app.models import Base, Enterprise, HelpRequest, Provider

Progress = Callable[[str, int, int], None]
WRITE_CHUNK = 2000
MAX_REPORTED_ERRORS = 1000
# Below this many written rows the planner's statistics are still good enough.
REFRESH_STATISTICS_ROWS = 1000

_PREPARE: Mapping[Kind, Callable[[Session, Principal, Table, Vocabulary], Batch]] = {
    Kind.ENTERPRISES: enterprises.prepare,
    Kind.REQUESTS: requests.prepare,
    Kind.PROVIDERS: providers.prepare,
}
_MODEL: Mapping[Kind, type[Base]] = {
    Kind.ENTERPRISES: Enterprise,
    Kind.REQUESTS: HelpRequest,
    Kind.PROVIDERS: Provider,
}
_ENTITY = {Kind.ENTERPRISES: "enterprise", Kind.REQUESTS: "request", Kind.PROVIDERS: "provider"}


class ImportRejected(AppError):
    status = 422
    type = "/problems/import-rejected"
    title = "Import rejected"


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _json(v) for k, v in values.items()}


def _reject(kind: Kind, batch: Batch) -> ImportRejected:
    errors = sorted(batch.errors, key=lambda e: (e.row, e.column))
    first = errors[0]
    return ImportRejected(
        f"{len(errors)} problem(s) in the {kind.value} file, nothing was imported; "
        f"first: row {first.row}, {first.column}: {first.message}",
        field="file",
        errors=[e.as_problem() for e in errors[:MAX_REPORTED_ERRORS]],
        error_count=len(errors),
    )


def import_file(
    session: Session,
    *,
    principal: Principal,
    kind: Kind,
    data: bytes,
    progress: Progress | None = None,
) -> ImportReport:
    """Coordinators import inside their regions, admins anywhere; others are refused."""
    if not (principal.is_coordinator or principal.is_admin):
        raise Forbidden("imports are for coordinators and admins")
    started = time.perf_counter()
    report = progress or (lambda stage, done, total: None)
    table = reader.read(kind, data)
    report("check", 0, len(table.rows))
    vocab = vocabulary(repository.categories(session))
    batch = _PREPARE[kind](session, principal, table, vocab)
    report("check", len(table.rows), len(table.rows))
    if batch.errors:
        raise _reject(kind, batch)
    _write(session, principal, kind, batch, report)
    return ImportReport(
        kind=kind,
        rows=len(table.rows),
        created=len(batch.inserts),
        updated=len(batch.updates),
        unchanged=batch.unchanged,
        ignored_columns=table.ignored,
        seconds=round(time.perf_counter() - started, 3),
    )


def _event(
    principal: Principal, action: str, table: str, entity_id: int, region: str
) -> dict[str, Any]:
    return {
        "actor_id": principal.user_id,
        "actor_label": principal.email,
        "action": action,
        "entity_type": table,
        "entity_id": entity_id,
        "region_code": region,
        "before": None,
        "created_at": utc_now(),
    }


def _write(
    session: Session, principal: Principal, kind: Kind, batch: Batch, report: Progress
) -> None:
    model, entity = _MODEL[kind], _ENTITY[kind]
    table = model.__tablename__
    total, done = len(batch.inserts) + len(batch.updates), 0
    report("write", 0, total)
    for inserts in repository.chunked(batch.inserts, WRITE_CHUNK):
        ids = repository.insert_rows(session, model, [i.values for i in inserts])
        repository.insert_events(
            session,
            [
                _event(principal, f"{entity}.imported", table, row_id, i.region_code)
                | {"after": _jsonable(i.values)}
                for row_id, i in zip(ids, inserts, strict=True)
            ],
        )
        done += len(inserts)
        report("write", done, total)
    for updates in repository.chunked(batch.updates, WRITE_CHUNK):
        repository.update_rows(session, model, [(u.id, u.changes) for u in updates])
        repository.insert_events(
            session,
            [
                _event(principal, f"{entity}.updated", table, u.id, u.region_code)
                | {"before": _jsonable(u.before), "after": _jsonable(u.changes)}
                for u in updates
            ],
        )
        done += len(updates)
        report("write", done, total)
    if total >= REFRESH_STATISTICS_ROWS:
        refresh_planner_statistics(session, [table, "events"])


def template_header(kind: Kind, lang: Lang) -> list[str]:
    """Required columns carry a trailing ``*`` (the reader ignores it)."""
    return [
        (c.zh if lang is Lang.ZH else c.en) + ("*" if c.required else "") for c in COLUMNS[kind]
    ]
