"""Set-based reads and writes for imports: lookups by natural key in chunks, one INSERT and
a few executemany UPDATEs per table, never a round trip per row."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, Table, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.models import Base, Category, Enterprise, Event, HelpRequest, Provider, table_of

KEY_CHUNK = 500  # values per IN (...): well under SQLite's and PostgreSQL's parameter limits
T = TypeVar("T")


def chunked(values: Iterable[T], size: int = KEY_CHUNK) -> Iterator[list[T]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk


def categories(session: Session) -> list[tuple[str, str, str]]:
    rows = session.execute(select(Category.key, Category.name_zh, Category.name_en)).all()
    return [(str(k), str(zh), str(en)) for k, zh, en in rows]


def default_severities(session: Session) -> dict[str, str]:
    rows = session.execute(select(Category.key, Category.default_severity)).all()
    return {str(k): str(v) for k, v in rows}


def _rows_where(
    session: Session, table: Table, column: Any, keys: Iterable[Any]
) -> Iterator[Row[Any]]:
    for chunk in chunked(keys):
        yield from session.execute(select(table).where(column.in_(chunk)))


def enterprises_by_uscc(session: Session, usccs: Iterable[str]) -> dict[str, dict[str, Any]]:
    table = table_of(Enterprise)
    return {
        row.uscc: dict(row._mapping) for row in _rows_where(session, table, table.c.uscc, usccs)
    }


def request_keys(session: Session, enterprise_ids: Iterable[int]) -> set[tuple[int, str, str]]:
    found: set[tuple[int, str, str]] = set()
    for chunk in chunked(set(enterprise_ids)):
        statement = select(HelpRequest.enterprise_id, HelpRequest.category, HelpRequest.title)
        found.update(
            (int(e), str(c), str(t))
            for e, c, t in session.execute(statement.where(HelpRequest.enterprise_id.in_(chunk)))
        )
    return found


def providers_by(
    session: Session, *, emails: Iterable[str], names: Iterable[str]
) -> list[dict[str, Any]]:
    """Providers whose e-mail or name is among those given (lowest id first)."""
    table = table_of(Provider)
    found: dict[int, dict[str, Any]] = {}
    email = func.lower(table.c.contact_email)
    for column, keys in ((email, emails), (table.c.name, names)):
        for row in _rows_where(session, table, column, keys):
            found[row.id] = dict(row._mapping)
    return [found[i] for i in sorted(found)]


def reserve_ids(session: Session, model: type[Base], count: int) -> list[int]:
    """``count`` primary keys nobody else gets, so rows can be inserted without RETURNING
    (which made psycopg parse one huge statement per page: 5× slower than executemany).

    PostgreSQL: drawn from the column's own sequence. SQLite: after the current maximum; the
    write transaction (``BEGIN IMMEDIATE``) holds the database lock until commit. The seed
    loader has the same private helper; this one could serve both.
    """
    if count == 0:
        return []
    table = table_of(model)
    if session.get_bind().dialect.name == "postgresql":
        statement = text(
            "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
        )
        return [int(v) for v in session.scalars(statement, {"table": table.name, "n": count})]
    start = int(session.scalar(select(func.max(table.c.id))) or 0) + 1
    return list(range(start, start + count))


def insert_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> list[int]:
    """One executemany INSERT with ids reserved beforehand; the ids in the rows' order."""
    if not rows:
        return []
    ids = reserve_ids(session, model, len(rows))
    session.execute(
        insert(table_of(model)),
        [row | {"id": row_id} for row, row_id in zip(rows, ids, strict=True)],
    )
    return ids


def update_rows(
    session: Session, model: type[Base], updates: Sequence[tuple[int, dict[str, Any]]]
) -> None:
    """executemany UPDATE by id, one statement per set of changed columns; bumps ``version``
    and ``updated_at`` itself, as bulk statements bypass the ORM's versioning."""
    table = table_of(model)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row_id, changes in updates:
        names = tuple(sorted(changes))
        row = {f"v_{k}": v for k, v in changes.items()} | {"row_id": row_id}
        groups.setdefault(names, []).append(row)
    now = utc_now()
    for names, params in groups.items():
        values: dict[str, Any] = {n: bindparam(f"v_{n}", type_=table.c[n].type) for n in names}
        values |= {"version": table.c.version + 1, "updated_at": now}
        where: ColumnElement[bool] = table.c.id == bindparam("row_id")
        session.execute(update(table).where(where).values(values), params)


def insert_events(session: Session, events: Sequence[dict[str, Any]]) -> None:
    if events:
        session.execute(insert(table_of(Event)), list(events))
