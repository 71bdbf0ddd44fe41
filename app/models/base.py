"""Declarative base shared by every table.

The naming convention gives every constraint a stable name, which Alembic needs to alter
constraints on SQLite (batch mode) and to compare models with migrations without drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Enum, Integer, MetaData, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on both databases.

    PostgreSQL keeps the zone; SQLite stores text without it and hands back naive values.
    We only ever write UTC, so naive values read back are UTC, and the API never emits a
    timestamp without its offset.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


# BIGINT on PostgreSQL; plain INTEGER on SQLite so the column is the rowid alias.
IdType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UtcDateTime(),
    }


def table_of(model: type[Base]) -> Table:
    """The model's ``Table``, for Core statements (bulk INSERT and UPDATE, COPY).

    ``DeclarativeBase`` types ``__table__`` as ``FromClause`` because a class may be mapped to a
    join or a subquery; every model here maps one table, and this checks it once instead of
    each caller casting.
    """
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to one table")
    return table


class IdMixin:
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)


def utc_now() -> datetime:
    """The column defaults' clock. Not ``app.common.clock``: the models import no package
    that imports them back (``app.common`` reads models); a default is bound once, at import,
    so sharing the function would not let a test move it anyway."""
    return datetime.now(UTC)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class VersionMixin:
    """Optimistic concurrency: every UPDATE checks and bumps ``version``.

    Bulk ``update()`` statements bypass this; services that use them bump it themselves.
    """

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        return {"version_id_col": cls.version}


def str_enum(enum_class: type[StrEnum], length: int = 20) -> Enum:
    """Store a StrEnum by its value ('closed', not 'CLOSED') in a VARCHAR, portable to both DBs."""
    return Enum(
        enum_class,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )
