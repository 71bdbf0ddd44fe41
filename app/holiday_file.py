"""An operator's holiday schedule, for the years the packaged calendar does not know yet.

The State Council announces next year's holidays and adjusted working days (调休) in the
autumn; ``chinese-calendar`` carries them only from the release after that, and a
deployment on an intranet may not be able to upgrade before 1 January. Without the new
year every working-day clock answers 503 (:class:`~app.errors.CalendarUnavailable`). This
file lets an operator type the announcement in, in a few lines of TOML, and keeps the clocks
exact::

    # 国务院办公厅关于2027年部分节假日安排的通知
    [2027]
    holidays = ["2027-01-01..2027-01-03", "2027-02-06..2027-02-13"]
    workdays = ["2027-02-14"]          # weekend days worked in lieu (调休)

A year listed here is read from here, every day of it: a day is a working day when it is
listed under ``workdays``, or is Monday to Friday and not under ``holidays``. Years not
listed still come from ``chinese-calendar``.

The file is checked as a whole when the settings are read, so a typo stops the service at
start-up with the line to fix, not on the first deadline of the new year. This module
imports nothing of the application: the settings validate with it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

RANGE = ".."


class HolidayFileError(ValueError):
    """The file cannot be read as a holiday schedule; the message names what to fix."""


@dataclass(frozen=True)
class HolidaySchedule:
    years: frozenset[int]
    holidays: frozenset[date]
    workdays: frozenset[date]

    def is_workday(self, day: date) -> bool | None:
        """Whether ``day`` is worked, or ``None`` when the schedule does not cover its year."""
        if day.year not in self.years:
            return None
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays


def load(path: Path) -> HolidaySchedule:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HolidayFileError(f"cannot read the holiday file {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HolidayFileError(f"the holiday file {path} is not valid TOML: {exc}") from exc
    return parse(raw, source=str(path))


def parse(raw: dict[str, object], *, source: str = "the holiday file") -> HolidaySchedule:
    if not raw:
        raise HolidayFileError(f"{source} lists no year")
    years: set[int] = set()
    holidays: set[date] = set()
    workdays: set[date] = set()
    for key, section in raw.items():
        if not (key.isdigit() and len(key) == 4):
            raise HolidayFileError(f"{source}: [{key}] is not a year (write e.g. [2027])")
        year = int(key)
        if not isinstance(section, dict):
            raise HolidayFileError(f"{source}: [{key}] must be a table of holidays and workdays")
        unknown = set(section) - {"holidays", "workdays"}
        if unknown:
            raise HolidayFileError(
                f"{source}: [{key}] has unknown keys {sorted(unknown)}; "
                "only 'holidays' and 'workdays' are read"
            )
        off = _days(section.get("holidays", []), year, f"{source}: [{key}] holidays")
        worked = _days(section.get("workdays", []), year, f"{source}: [{key}] workdays")
        if not off:
            raise HolidayFileError(
                f"{source}: [{key}] lists no holidays (every year has some: copy the notice)"
            )
        both = off & worked
        if both:
            raise HolidayFileError(
                f"{source}: [{key}] lists {min(both).isoformat()} as a holiday and a workday"
            )
        weekdays = sorted(d for d in worked if d.weekday() < 5)
        if weekdays:
            raise HolidayFileError(
                f"{source}: [{key}] workdays are weekend days worked in lieu (调休); "
                f"{weekdays[0].isoformat()} is a weekday"
            )
        years.add(year)
        holidays |= off
        workdays |= worked
    return HolidaySchedule(frozenset(years), frozenset(holidays), frozenset(workdays))


def _days(values: object, year: int, where: str) -> set[date]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise HolidayFileError(f'{where}: write a list of dates such as "{year}-10-01"')
    found: set[date] = set()
    for value in values:
        first, _, last = value.partition(RANGE)
        start, end = _date(first, where), _date(last or first, where)
        if end < start:
            raise HolidayFileError(f"{where}: the range {value!r} ends before it starts")
        if start.year != year or end.year != year:
            raise HolidayFileError(f"{where}: {value!r} is not in {year}")
        found |= {start + timedelta(days=n) for n in range((end - start).days + 1)}
    return found


def _date(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise HolidayFileError(
            f"{where}: {text.strip()!r} is not a date (YYYY-MM-DD, or a range "
            f"YYYY-MM-DD{RANGE}YYYY-MM-DD)"
        ) from exc
