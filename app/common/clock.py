"""The one place the service reads the time, so tests can move it.

Moments are stored in UTC; *dates* a person sees or that a rule reads (policy validity,
pauses, "today" in a deadline) are local to the service's time zone (``ZHUQI_TIMEZONE``,
default ``Asia/Shanghai``): between 00:00 and 08:00 Beijing time the UTC date is still
yesterday's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from zoneinfo import ZoneInfo

from app.settings import get_settings


def utc_now() -> datetime:
    """Timezone-aware now; naive datetimes never enter the database."""
    return datetime.now(UTC)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_zone() -> ZoneInfo:
    """The service's time zone (validated when the settings are read)."""
    return _zone(get_settings().timezone)


def today() -> date:
    """Today's date in the service's time zone, not in UTC."""
    return utc_now().astimezone(local_zone()).date()


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; we only ever write UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
