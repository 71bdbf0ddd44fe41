"""Working days in mainland China, by the official holiday calendar (chinese-calendar).

The "13710" clocks count working days: the Spring Festival or National Day week does not
eat a 7-day deadline, and an adjusted Saturday (调休) is a working day. chinese-calendar
carries the State Council's yearly schedule; outside the years it knows, a clock cannot be
computed honestly, so :class:`~app.errors.CalendarUnavailable` says so rather than guess.
An operator can type in a new year's schedule before the package knows it
(``ZHUQI_HOLIDAY_FILE``, :mod:`app.holiday_file`); the years it lists are read from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache, lru_cache
from pathlib import Path

import chinese_calendar

from app import holiday_file
from app.common.clock import local_zone
from app.errors import CalendarUnavailable
from app.settings import get_settings


def is_working_day(day: date) -> bool:
    return _is_working_day(day, get_settings().holiday_file)


def calendar_source() -> Path | None:
    """What, besides the package, says which days are worked: part of the key of every
    cached answer, so a process (a test) that changes it never reads a stale one."""
    return get_settings().holiday_file


def _is_working_day(day: date, source: Path | None) -> bool:
    if source is not None and (known := _schedule(source).is_workday(day)) is not None:
        return known
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError as exc:
        raise CalendarUnavailable(
            f"the official holiday calendar does not cover {day.year} yet "
            f"(chinese-calendar {_version()}): {exc}; upgrade chinese-calendar, or give the "
            "State Council's schedule for that year in ZHUQI_HOLIDAY_FILE",
            year=day.year,
        ) from exc


@cache
def _schedule(source: Path) -> holiday_file.HolidaySchedule:
    return holiday_file.load(source)  # already checked once, when the settings were read


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


def due_date_if_known(start: date, days: int, now: datetime) -> date | None:
    """The ``days``-th working day after ``start``, or ``None`` when it has certainly not come.

    Late in a year, a 30-working-day clock reaches into a year the calendar does not know
    yet. Every day still to be counted then lies in that unknown year, so the deadline is no
    earlier than its first day; while local ``now`` is before that year, the clock has not
    run out, exactly, whatever the new year's holidays will be. Only once ``now`` itself is
    in an unknown year is the answer a guess, and :class:`CalendarUnavailable` still says so.
    """
    found = _due_or_unknown_year(start, days, calendar_source())
    if isinstance(found, date):
        return found
    if local_date(now).year < found:
        return None
    return add_working_days(start, days)  # now is in the unknown year: it raises


@lru_cache(maxsize=8192)
def _due_or_unknown_year(start: date, days: int, source: Path | None) -> date | int:
    """The due date, or the year the calendar does not know that the count runs into.
    Cached, failures included: a sweep or a publish counts from the same few start dates
    thousands of times, and in December every 30-day clock runs into next year."""
    try:
        return add_working_days(start, days)
    except CalendarUnavailable as exc:
        year = exc.extra.get("year")
        if not isinstance(year, int):
            raise
        return year


def end_of_day(day: date) -> datetime:
    """The moment local ``day`` ends (local midnight after it), as an aware datetime."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=local_zone())


def local_date(moment: datetime) -> date:
    """The calendar date of an aware ``moment`` in the service's time zone."""
    return moment.astimezone(local_zone()).date()


NOTICE_DAYS = 61  # how long before the calendar runs out an operator is told, every day


@dataclass(frozen=True)
class CalendarOutlook:
    """How far ahead the working-day clocks can count, and what an operator must do about it.

    The State Council announces a year's holidays in the autumn before it; until the package
    (or the operator's file) carries them, every clock that reaches that year answers 503 from
    its first day. Readiness and the metrics say so weeks ahead, so the fix is made in time.
    """

    known_through: int | None  # the last year of the unbroken run from today's; None: not today's
    days_left: int  # days until the first unknown day; 0 when today is in an unknown year
    warning: str | None


def calendar_outlook(today: date, source: Path | None) -> CalendarOutlook:
    if not _year_known(today.year, source):
        return CalendarOutlook(
            None, 0, _fix(f"does not cover {today.year}: every working-day clock answers 503 now")
        )
    last = today.year
    while _year_known(last + 1, source):
        last += 1
    days_left = (date(last + 1, 1, 1) - today).days
    warning = None
    if days_left <= NOTICE_DAYS:
        warning = _fix(
            f"ends on {last}-12-31, in {days_left} days; from then on every working-day clock "
            "answers 503"
        )
    return CalendarOutlook(last, days_left, warning)


def _fix(what: str) -> str:
    return (
        f"the official holiday calendar (chinese-calendar {_version()}) {what}; upgrade "
        "chinese-calendar, or give the State Council's schedule in ZHUQI_HOLIDAY_FILE"
    )


@lru_cache(maxsize=64)
def _year_known(year: int, source: Path | None) -> bool:
    if source is not None and year in _schedule(source).years:
        return True
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def _version() -> str:
    return str(getattr(chinese_calendar, "__version__", "installed"))
