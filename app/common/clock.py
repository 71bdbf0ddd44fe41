"""The one place the service reads the time, so tests can move it."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utc_now() -> datetime:
    """Timezone-aware now; naive datetimes never enter the database."""
    return datetime.now(UTC)


def today() -> date:
    return utc_now().date()


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; we only ever write UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
