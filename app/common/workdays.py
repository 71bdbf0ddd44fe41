"""Working days in mainland China, by the official holiday calendar (chinese-calendar).

The "13710" clocks count working days: the Spring Festival or National Day week does not
eat a 7-day deadline, and an adjusted Saturday (调休) is a working day. chinese-calendar
carries the State Council's yearly schedule; outside the years it knows, a clock cannot be
computed honestly, so :class:`~app.errors.CalendarUnavailable` says so rather than guess.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import chinese_calendar

from app.common.clock import local_zone
from app.errors import CalendarUnavailable


def is_working_day(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError as exc:
        raise CalendarUnavailable(
            f"the official holiday calendar does not cover {day.year} yet "
            f"(chinese-calendar {_version()}): {exc}; upgrade chinese-calendar",
            year=day.year,
        ) from exc


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself never counts).

    ``days`` = 0 gives ``start``. Negative ``days`` count backwards the same way.
    """
    step = timedelta(days=1 if days >= 0 else -1)
    left, day = abs(days), start
    while left:
        day += step
        if is_working_day(day):
            left -= 1
    return day


def end_of_day(day: date) -> datetime:
    """The moment local ``day`` ends (local midnight after it), as an aware datetime."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=local_zone())


def local_date(moment: datetime) -> date:
    """The calendar date of an aware ``moment`` in the service's time zone."""
    return moment.astimezone(local_zone()).date()


def _version() -> str:
    return str(getattr(chinese_calendar, "__version__", "installed"))
