"""The audit trail: every change records who did what to which entity, before and after.

Callers pass the session of the change itself, so the event commits or rolls back with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    CursorResult,
    Integer,
    Select,
    String,
    Table,
    cast,
    insert,
    inspect,
    literal,
    type_coerce,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import SQLColumnExpression

from app.common.bulk import insert_rows
from app.common.clock import utc_now
from app.common.principal import Principal
from app.models import Base, Event, table_of
from app.webhooks import service as webhook_service
from app.webhooks.repository import subscription_count

_BOOKKEEPING = frozenset({"updated_at", "version"})


def jsonable(value: Any) -> Any:
    """A column value as JSON data (what events store)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def snapshot(obj: Base) -> dict[str, Any]:
    """Column values of a row as JSON-ready data (relationships are not followed)."""
    mapper = inspect(type(obj))
    return {c.key: jsonable(getattr(obj, c.key)) for c in mapper.column_attrs}


def snapshot_of(model: type[Base], values: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`snapshot` of a row written without an ORM object: its column values by key."""
    return {c.key: jsonable(values[c.key]) for c in inspect(model).column_attrs}


# One event's INSERT, built once (its statement and cache key cost more CPU than running it);
# the second also returns how many webhook subscriptions there are.
_INSERT = insert(table_of(Event)).returning(table_of(Event).c.id)
_INSERT_COUNTING = insert(table_of(Event)).returning(table_of(Event).c.id, subscription_count())


def record(
    session: Session,
    *,
    actor: Principal | None,
    action: str,
    entity: Base,
    region_code: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> int | None:
    """Append one event; ``after`` defaults to the entity's current snapshot. Returns the
    event's id (what a notification names as its cause).

    With ``before``, only the fields that changed are kept, and a change that changed nothing
    records nothing (returns None): the log says what happened, not what was attempted.
    A removal passes ``before`` and ``after={}`` and keeps ``before`` whole.

    A Core ``INSERT ... RETURNING id``, not an ORM object: the event is never read back in
    the change's session, and its unit-of-work flush was ~30 % of answering an offer.
    """
    session.flush()
    change = Change(
        action=action,
        entity_type=type(entity).__tablename__,
        entity_id=getattr(entity, "id", None),
        region_code=region_code,
        before=before,
        after=after if after is not None else snapshot(entity),
    )
    return record_change(session, actor=actor, change=change)


def record_change(session: Session, *, actor: Principal | None, change: Change) -> int | None:
    """:func:`record` of a change written by a statement rather than through an ORM object
    (``change.after`` is then required: there is no object to snapshot)."""
    before, changed_after = change.before, change.after or {}
    if before is not None and change.after == {}:
        pass  # a removal: what was there is the whole record
    elif before is not None:
        changed_after = {k: v for k, v in changed_after.items() if before.get(k) != v}
        if not set(changed_after) - _BOOKKEEPING:
            return None
        before = {k: before.get(k) for k in changed_after}
    row = {
        "actor_id": actor.user_id if actor else None,
        "actor_label": actor.email if actor else "system",
        "action": change.action,
        "entity_type": change.entity_type,
        "entity_id": change.entity_id,
        "region_code": change.region_code,
        "before": before,
        "after": changed_after,
        "created_at": utc_now(),
    }
    event_id: int
    if webhook_service.known_to_have_none(session) is None:
        # The subscriptions' count rides on the INSERT: with none (the usual case) the
        # fan-out needs no SELECT of its own, a statement less on every single write.
        event_id, count = session.execute(_INSERT_COUNTING, row).one()
        webhook_service.note_count(session, count)
    else:
        event_id = session.execute(_INSERT, row).scalar_one()
    if webhook_service.subscribed_to_any(session, (change.action,)):
        webhook_service.enqueue_many(session, [{**row, "id": event_id}])
    return event_id


@dataclass(frozen=True)
class Change:
    """One row's entry in a bulk change: what :func:`record` writes, without the ORM object."""

    action: str
    entity_type: str
    entity_id: int | None
    region_code: str = ""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


EVENT_BATCH = 2000  # rows per COPY or executemany batch


def record_many(
    session: Session,
    *,
    actor: Principal | None,
    changes: Iterable[Change],
) -> int:
    """Append one event per change in bulk (a publish of 80,000 offers writes 80,000 events
    without building 80,000 ORM objects): ``COPY`` on PostgreSQL, executemany batches
    elsewhere. Returns how many were written.

    Every event reaches the webhook subscriptions that want it, as with :func:`record` (a
    publish's offers were once written here without, and no subscriber heard of them): a
    batch some subscription wants is inserted with ``RETURNING`` for the outbox rows, so it
    is an executemany even on PostgreSQL; with no such subscriber it is a plain COPY."""
    now = utc_now()
    table = Event.__table__
    assert isinstance(table, Table)  # one table per model
    actor_id, label = (actor.user_id, actor.email) if actor else (None, "system")
    written = 0
    batch: list[dict[str, Any]] = []
    for change in changes:
        batch.append(
            {
                "actor_id": actor_id,
                "actor_label": label,
                "action": change.action,
                "entity_type": change.entity_type,
                "entity_id": change.entity_id,
                "region_code": change.region_code,
                "before": change.before,
                "after": change.after,
                "created_at": now,
            }
        )
        if len(batch) >= EVENT_BATCH:
            written += _write(session, table, batch)
            batch = []
    return written + _write(session, table, batch)


def _write(session: Session, table: Table, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    if webhook_service.subscribed_to_any(session, {row["action"] for row in rows}):
        return _insert_announced(session, table, rows)
    return insert_rows(session, table, rows)


def _insert_announced(session: Session, table: Table, rows: list[dict[str, Any]]) -> int:
    """Insert and fan out to the webhook outbox. ``RETURNING`` gives back exactly what a
    delivery's payload names (no need to pair rows with parameters, which would cost SQLite
    a statement per row)."""
    identity = (table.c.id, table.c.action, table.c.entity_type, table.c.entity_id)
    written = session.execute(insert(table).returning(*identity, table.c.region_code), rows)
    webhook_service.enqueue_many(session, [dict(row) for row in written.mappings()])
    return len(rows)


def json_value(value: Any) -> ColumnElement[Any]:
    """A JSON value every row of :func:`record_selected` stores alike (``None`` is JSON
    ``null``, as :func:`record_many` stores it)."""
    return literal(value, JSON)


def json_of_ids(session: Session, **columns: SQLColumnExpression[int]) -> ColumnElement[Any]:
    """``{"key": <column>, ...}`` built in SQL from integer columns, as the very text
    ``json.dumps`` gives (no string values: they would need escaping)."""
    text: ColumnElement[str] = literal("{", String)
    for n, (key, column) in enumerate(columns.items()):
        text = text + literal(f'{", " if n else ""}"{key}": ', String) + cast(column, String)
    text = text + literal("}", String)
    if session.get_bind().dialect.name == "postgresql":
        return cast(text, JSON)
    return type_coerce(text, JSON)


def record_selected(
    session: Session,
    *,
    actor: Principal | None,
    action: str,
    entity_type: str,
    rows: Select[int, str, Any, Any],
) -> int:
    """One ``action`` event per row of ``rows`` (entity id, region code, ``before``,
    ``after``: JSON as :func:`json_value` or :func:`json_of_ids` build it), in its order, with
    one ``INSERT ... SELECT``. Why: a publish records one event per offer and per new plan,
    rows the database already holds; sent back as parameters they cost more than the
    statements that changed them (~0.3 s of a 10k publish on SQLite, most of it binding and
    JSON-encoding per row). Subscribed webhooks get their outbox rows as with
    :func:`record_many`. Returns how many were written."""
    table = Event.__table__
    assert isinstance(table, Table)  # one table per model
    actor_id, label = (actor.user_id, actor.email) if actor else (None, "system")
    source = rows.add_columns(
        literal(actor_id, Integer),
        literal(label, String),
        literal(action, String),
        literal(entity_type, String),
        literal(utc_now(), table.c.created_at.type),
    )
    columns = ("entity_id", "region_code", "before", "after", "actor_id", "actor_label")
    statement = insert(table).from_select((*columns, "action", "entity_type", "created_at"), source)
    if not webhook_service.subscribed_to_any(session, {action}):
        # kept: SQLAlchemy closes an INSERT's cursor, and with it its rowcount, otherwise
        result = session.execute(statement.execution_options(preserve_rowcount=True))
        return result.rowcount if isinstance(result, CursorResult) else 0
    identity = (table.c.id, table.c.action, table.c.entity_type, table.c.entity_id)
    written = session.execute(statement.returning(*identity, table.c.region_code)).mappings()
    events = sorted((dict(row) for row in written), key=lambda row: row["id"])
    webhook_service.enqueue_many(session, events)
    return len(events)
