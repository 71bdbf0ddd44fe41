"""An operator's holiday file keeps the working-day clocks exact in a year the packaged
calendar does not know yet, and a wrong file stops the start-up with the thing to fix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.common.clock import today
from app.common.workdays import (
    add_working_days,
    calendar_outlook,
    due_date_if_known,
    is_working_day,
)
from app.errors import CalendarUnavailable
from app.holiday_file import HolidayFileError, load
from app.settings import Settings, get_settings
from app.supervision.clocks import last_late_start

# A made-up schedule for a year chinese-calendar does not know, shaped like a notice: a
# three-day New Year, an eight-day Spring Festival with two weekend days worked in lieu.
NEXT_YEAR = """
# 国务院办公厅关于2027年部分节假日安排的通知 (test data, not the real notice)
[2027]
holidays = ["2027-01-01..2027-01-03", "2027-02-06..2027-02-13"]
workdays = ["2027-02-14", "2027-02-20"]
"""

Use = Callable[[str], Path]

pytestmark = pytest.mark.usefixtures("packaged_calendar_only")


@pytest.fixture
def use_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Use]:
    """Point the process's settings at a holiday file, as ``ZHUQI_HOLIDAY_FILE`` does."""

    def use(text: str) -> Path:
        path = tmp_path / "holidays.toml"
        path.write_text(text, encoding="utf-8")
        monkeypatch.setenv("ZHUQI_HOLIDAY_FILE", str(path))
        get_settings.cache_clear()
        return path

    yield use
    monkeypatch.delenv("ZHUQI_HOLIDAY_FILE", raising=False)
    get_settings.cache_clear()


def _unknown_to_the_package(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return True
    return False


class TestTheFileDecidesItsYears:
    def test_days_of_a_listed_year_follow_the_file(self, use_file: Use) -> None:
        use_file(NEXT_YEAR)
        assert not is_working_day(date(2027, 1, 1))  # a Friday holiday
        assert not is_working_day(date(2027, 2, 8))  # a Monday of the Spring Festival
        assert is_working_day(date(2027, 2, 14))  # a Sunday worked in lieu
        assert is_working_day(date(2027, 1, 4))  # an ordinary Monday
        assert not is_working_day(date(2027, 1, 9))  # an ordinary Saturday

    def test_every_day_of_the_year_is_answered_by_the_rule(self, use_file: Use) -> None:
        use_file(NEXT_YEAR)
        day = date(2027, 1, 1)
        off = {date(2027, 1, 1) + timedelta(n) for n in range(3)} | {
            date(2027, 2, 6) + timedelta(n) for n in range(8)
        }
        worked = {date(2027, 2, 14), date(2027, 2, 20)}
        while day.year == 2027:
            expected = day in worked or (day.weekday() < 5 and day not in off)
            assert is_working_day(day) == expected, day
            day += timedelta(1)

    def test_years_it_does_not_list_still_come_from_the_package(self, use_file: Use) -> None:
        use_file(NEXT_YEAR)
        assert not is_working_day(date(2026, 10, 1))  # National Day, from chinese-calendar
        assert is_working_day(date(2026, 10, 10))  # an adjusted Saturday, from the package
        with pytest.raises(CalendarUnavailable):
            is_working_day(date(2028, 6, 1))

    def test_a_listed_year_wins_over_the_package(self, use_file: Use) -> None:
        # An operator who corrects a year the package knows is believed, for the whole year:
        # the file speaks for every day of a year it lists.
        use_file('[2026]\nholidays = ["2026-11-30"]\n')
        assert not is_working_day(date(2026, 11, 30))
        assert is_working_day(date(2026, 12, 1))
        assert is_working_day(date(2026, 10, 1))  # National Day is not in this file

    def test_without_a_file_the_unknown_year_is_still_refused_and_says_how_to_fix(
        self,
    ) -> None:
        assert _unknown_to_the_package(2028)
        with pytest.raises(CalendarUnavailable) as caught:
            is_working_day(date(2028, 6, 1))
        assert "ZHUQI_HOLIDAY_FILE" in caught.value.detail


class TestClocksAcrossTheYearEnd:
    def test_a_clock_into_the_listed_year_is_exact(self, use_file: Use) -> None:
        now = datetime(2027, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 in Beijing, in 2027
        if _unknown_to_the_package(2027):
            with pytest.raises(CalendarUnavailable):
                due_date_if_known(date(2026, 12, 20), 30, now)
        use_file(NEXT_YEAR)
        due = due_date_if_known(date(2026, 12, 20), 30, now)
        assert due is not None
        assert due == add_working_days(date(2026, 12, 20), 30)
        span = [
            date(2026, 12, 20) + timedelta(n) for n in range(1, (due - date(2026, 12, 20)).days + 1)
        ]
        assert sum(is_working_day(d) for d in span) == 30
        assert is_working_day(due)
        assert not any(
            date(2027, 2, 6) <= d <= date(2027, 2, 13) and is_working_day(d) for d in span
        )

    def test_the_cached_cut_off_follows_the_file(self, use_file: Use) -> None:
        if _unknown_to_the_package(2027):
            with pytest.raises(CalendarUnavailable):
                last_late_start(date(2027, 1, 20), 5)
        use_file(NEXT_YEAR)
        start = last_late_start(date(2027, 1, 20), 5)
        assert add_working_days(start, 5) < date(2027, 1, 20)
        assert add_working_days(start + timedelta(1), 5) >= date(2027, 1, 20)


def first_unknown_year() -> int:
    year = date.today().year
    while not _unknown_to_the_package(year):
        year += 1
    return year


class TestTheOperatorIsToldBeforeTheCalendarRunsOut:
    """Readiness, the metrics and the worker's log say how far the clocks can count, weeks
    before the first day of a year nobody has given the calendar for."""

    def test_two_months_ahead_it_warns_with_the_days_left_and_the_fix(self) -> None:
        unknown = first_unknown_year()
        outlook = calendar_outlook(date(unknown - 1, 11, 30), None)
        assert outlook.known_through == unknown - 1
        assert outlook.days_left == 32
        assert outlook.warning is not None
        assert "in 32 days" in outlook.warning
        assert "ZHUQI_HOLIDAY_FILE" in outlook.warning

    def test_earlier_in_the_year_it_is_quiet(self) -> None:
        unknown = first_unknown_year()
        outlook = calendar_outlook(date(unknown - 1, 6, 1), None)
        assert outlook.known_through == unknown - 1
        assert outlook.days_left == (date(unknown, 1, 1) - date(unknown - 1, 6, 1)).days
        assert outlook.warning is None

    def test_in_the_unknown_year_it_says_the_clocks_stopped(self) -> None:
        outlook = calendar_outlook(date(first_unknown_year(), 1, 2), None)
        assert (outlook.known_through, outlook.days_left) == (None, 0)
        assert outlook.warning is not None
        assert "503 now" in outlook.warning

    def test_the_operators_file_extends_it_and_ends_the_warning(self, use_file: Use) -> None:
        unknown = first_unknown_year()
        path = use_file(f'[{unknown}]\nholidays = ["{unknown}-01-01"]\n')
        outlook = calendar_outlook(date(unknown - 1, 11, 30), path)
        assert outlook.known_through == unknown
        assert outlook.days_left == (date(unknown + 1, 1, 1) - date(unknown - 1, 11, 30)).days
        assert outlook.warning is None

    def test_readiness_reports_it(self, client: TestClient, settings: Settings) -> None:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        outlook = calendar_outlook(today(), settings.holiday_file)
        assert ready.json()["holiday_calendar"] == {
            "known_through": outlook.known_through,
            "days_left": outlook.days_left,
            "warning": outlook.warning,
        }


class TestAWrongFileStopsTheStartUp:
    @pytest.mark.parametrize(
        ("text", "says"),
        [
            ("[2027\n", "not valid TOML"),
            ("", "lists no year"),
            ('[next]\nholidays = ["2027-01-01"]\n', "is not a year"),
            ('[2027]\nholidays = ["2027-13-01"]\n', "is not a date"),
            ('[2027]\nholidays = ["2027-02-13..2027-02-06"]\n', "ends before it starts"),
            ('[2027]\nholidays = ["2026-12-31"]\n', "is not in 2027"),
            ('[2027]\nholidays = ["2027-01-01"]\nworkdays = ["2027-01-01"]\n', "a holiday and"),
            ('[2027]\nholidays = ["2027-01-01"]\nworkdays = ["2027-01-04"]\n', "is a weekday"),
            ('[2027]\nholiday = ["2027-01-01"]\n', "unknown keys"),
            ("[2027]\nworkdays = []\n", "lists no holidays"),
            ('[2027]\nholidays = "2027-01-01"\n', "a list of dates"),
        ],
    )
    def test_each_mistake_is_named(self, tmp_path: Path, text: str, says: str) -> None:
        path = tmp_path / "holidays.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(HolidayFileError, match=says):
            load(path)
        with pytest.raises(ValidationError, match=says):
            Settings(environment="test", secret_key="s" * 40, holiday_file=path)

    def test_a_missing_file_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="cannot read the holiday file"):
            Settings(environment="test", secret_key="s" * 40, holiday_file=tmp_path / "none")
