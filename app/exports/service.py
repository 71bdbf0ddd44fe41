"""Run an export: pick the statement, read it in batches, write the file.

Read-only: nothing is flushed. Rows are fetched ``BATCH`` at a time (``yield_per``: a
server-side cursor on PostgreSQL, an incremental cursor on SQLite), rendered and written, so
memory does not grow with the number of rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC
from tempfile import SpooledTemporaryFile
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from app.assignments.repository import AssignmentFilter
from app.common.clock import utc_now
from app.common.principal import Principal
from app.exports import columns, labels, repository
from app.exports import stats as stats_export
from app.exports.columns import Cell, Column
from app.exports.labels import Lang
from app.exports.writers import Format, spool
from app.models import PlanStatus
from app.providers.repository import ProviderFilter
from app.requests.repository import RequestFilter
from app.stats import service as stats_service
from app.stats.repository import StatsFilter
from app.stats.schemas import GroupBy

BATCH = 1000


class Export:
    """A finished export file, ready to stream: the caller owns (and closes) ``file``."""

    def __init__(self, kind: str, fmt: Format, file: SpooledTemporaryFile[bytes]) -> None:
        self.fmt = fmt
        self.file = file
        self.filename = f"zhuqi-{kind}-{utc_now().astimezone(UTC):%Y%m%d-%H%M%S}.{fmt.value}"


def _stream(
    session: Session, statement: Select[Any], cols: Sequence[Column], names: labels.Labels
) -> Iterator[list[Cell]]:
    result = session.execute(statement.execution_options(yield_per=BATCH))
    for row in result:
        yield columns.render(cols, row, names)


def _tabular(
    session: Session,
    kind: str,
    statement: Select[Any],
    cols: Sequence[Column],
    *,
    fmt: Format,
    lang: Lang,
) -> Export:
    names = labels.load(session, lang)
    rows = _stream(session, statement, cols, names)
    sheet = kind if lang is Lang.EN else _SHEET_ZH[kind]
    return Export(kind, fmt, spool(fmt, columns.headers(cols, names), rows, title=sheet))


_SHEET_ZH = {
    "requests": "诉求",
    "assignments": "交办",
    "plans": "服务方案",
    "providers": "服务方",
    "stats": "统计",
}


def export_requests(
    session: Session, *, principal: Principal, filters: RequestFilter, fmt: Format, lang: Lang
) -> Export:
    cols = columns.visible(columns.REQUESTS, principal)
    statement = repository.requests(principal, filters, cols)
    return _tabular(session, "requests", statement, cols, fmt=fmt, lang=lang)


def export_assignments(
    session: Session, *, principal: Principal, filters: AssignmentFilter, fmt: Format, lang: Lang
) -> Export:
    cols = columns.visible(columns.ASSIGNMENTS, principal)
    statement = repository.assignments(principal, filters, cols)
    return _tabular(session, "assignments", statement, cols, fmt=fmt, lang=lang)


def export_plans(
    session: Session,
    *,
    principal: Principal,
    status: PlanStatus | None,
    fmt: Format,
    lang: Lang,
) -> Export:
    cols = columns.visible(columns.PLANS, principal)
    statement = repository.plans(principal, status, cols)
    return _tabular(session, "plans", statement, cols, fmt=fmt, lang=lang)


def export_providers(
    session: Session, *, principal: Principal, filters: ProviderFilter, fmt: Format, lang: Lang
) -> Export:
    cols = columns.visible(columns.PROVIDERS, principal)
    statement = repository.providers(principal, filters, cols)
    return _tabular(session, "providers", statement, cols, fmt=fmt, lang=lang)


def export_stats(
    session: Session,
    *,
    principal: Principal,
    filters: StatsFilter,
    group_by: GroupBy | None,
    fmt: Format,
    lang: Lang,
) -> Export:
    """The same figures ``GET /stats`` returns (its own scope checks included), with every
    group rather than a page, streamed from the database in batches."""
    stats, groups = stats_service.every_group(
        session, principal=principal, filters=filters, group_by=group_by
    )
    names = labels.load(session, lang)
    sheet = "stats" if lang is Lang.EN else _SHEET_ZH["stats"]
    table = stats_export.rows(stats, groups, names)
    file = spool(fmt, stats_export.headers(stats, names), table, title=sheet)
    return Export("stats", fmt, file)
