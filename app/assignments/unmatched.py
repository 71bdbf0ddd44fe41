"""Where a request can read why it is unmatched: the latest run's and latest re-match's reason.

A run records its reasons in its statistics too, but a request's page must not search
every run for itself, and a re-match has no statistics at all (its reason used to reach
only the audit trail). Each source keeps one row per request: replaced when the source
decides the request again, deleted when it finds a provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import RowMapping, Select, SQLColumnExpression, Table, delete
from sqlalchemy.orm import Session

import matching
from app.common.bulk import insert_rows
from app.common.clock import utc_now
from app.common.idsets import in_ids
from app.models import UnmatchedReason, table_of

Source = Literal["run", "rematch"]
RUN: Source = "run"
REMATCH: Source = "rematch"


def structured(unmatched: matching.Unmatched) -> dict[str, Any]:
    """The JSON form of an engine reason (run statistics, this table, the API)."""
    return {
        "request_id": unmatched.request,
        "reason": unmatched.reason.value,
        "removed": dict(unmatched.removed),
        "taken_by": list(unmatched.taken_by),
        "message_zh": unmatched.message_zh,
        "message_en": unmatched.message_en,
    }


def record(
    session: Session,
    *,
    source: Source,
    decided: Sequence[int],
    unmatched: Sequence[matching.Unmatched],
    run_id: int | None = None,
) -> None:
    """Replace ``source``'s reasons for the ``decided`` requests with ``unmatched`` (a
    decided request absent from it found a provider, so its old reason goes)."""
    session.execute(
        delete(UnmatchedReason).where(
            UnmatchedReason.source == source, in_ids(UnmatchedReason.request_id, decided)
        )
    )
    now = utc_now()
    rows = [
        {
            **structured(u),
            "request_id": int(u.request),
            "source": source,
            "match_run_id": run_id,
            "decided_at": now,
        }
        for u in unmatched
    ]
    table = UnmatchedReason.__table__
    assert isinstance(table, Table)  # one table per model
    insert_rows(session, table, rows)


#: Not an engine rule: the worker's re-match of the request kept failing (its data breaks the
#: snapshot or the engine, say) and was given up after its retries; a coordinator offers by hand.
REMATCH_FAILED = "rematch_failed"


def failed(request_id: int, attempts: int) -> dict[str, Any]:
    """The reason recorded (and sent in its event) for a re-match the worker gave up on."""
    return {
        "request_id": request_id,
        "reason": REMATCH_FAILED,
        "removed": {},
        "taken_by": [],
        "message_zh": f"自动重新匹配连续失败 {attempts} 次,已停止重试,请协调员手动指派",
        "message_en": f"automatic re-matching failed {attempts} times and was given up; "
        "assign a provider by hand",
    }


def record_failed(session: Session, reasons: Sequence[dict[str, Any]]) -> None:
    """Replace the re-match reasons of these requests with their :func:`failed` reasons."""
    ids = [int(r["request_id"]) for r in reasons]
    session.execute(
        delete(UnmatchedReason).where(
            UnmatchedReason.source == REMATCH, in_ids(UnmatchedReason.request_id, ids)
        )
    )
    now = utc_now()
    rows = [{**r, "source": REMATCH, "match_run_id": None, "decided_at": now} for r in reasons]
    table = UnmatchedReason.__table__
    assert isinstance(table, Table)  # one table per model
    insert_rows(session, table, rows)


_TABLE = table_of(UnmatchedReason)
#: A reason's columns as :func:`with_latest` joins them to a request's: named apart from its own.
_JOINED = tuple(column.label(f"unmatched_{column.key}") for column in _TABLE.c)


def with_latest(statement: Select[Any], request_id: SQLColumnExpression[int]) -> Select[Any]:
    """``statement`` (one request's row) joined to the request's reasons, the run's first: a
    row per reason, or one row whose reason columns are NULL when it has none.

    One statement where the request and its reasons were two: on PostgreSQL a statement's
    round trip (psycopg, the result's set-up) was about half of the CPU a request's page spent
    in its worker thread, for reasons most requests do not have.
    """
    return (
        statement.add_columns(*_JOINED)
        .outerjoin(_TABLE, _TABLE.c.request_id == request_id)
        .order_by(_TABLE.c.source.desc())
    )


def joined_reasons(rows: Sequence[RowMapping]) -> list[dict[str, Any]]:
    """The reasons of :func:`with_latest`'s rows, keyed by :class:`UnmatchedReason`'s columns."""
    return [
        {column.key: row[label.name] for column, label in zip(_TABLE.c, _JOINED, strict=True)}
        for row in rows
        if row["unmatched_source"] is not None
    ]


_PRIVATE = {
    "taken_by": [],
    "message_zh": "候选服务方的容量已被更高优先级的诉求占用",
    "message_en": "the candidates' capacity was taken by higher-priority requests",
}


def for_enterprise(reason: dict[str, Any]) -> dict[str, Any]:
    """What the request's own enterprise may see: not which other requests took the slots."""
    if reason.get("reason") == matching.Reason.CAPACITY_TAKEN.value:
        return {**reason, **_PRIVATE}
    return {**reason, "taken_by": []}
