"""Working-day clocks by the official holiday calendar, and "today" in the local time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import chinese_calendar
import pytest
from pydantic import ValidationError

from app.common import clock
from app.common.workdays import (
    add_working_days,
    due_date_if_known,
    end_of_day,
    is_working_day,
    local_date,
)
from app.errors import CalendarUnavailable
from app.settings import Settings
from app.supervision.clocks import clock_item, last_late_start, late_before

# These tests are about the packaged calendar's edge (2026 known, 2027 not).
pytestmark = pytest.mark.usefixtures("packaged_calendar_only")


class TestAddWorkingDays:
    def test_national_day_week_does_not_count(self) -> None:
        # 2026-10-01..07 are holidays; 2026-10-08 (Thursday) is the first working day after.
        assert add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)

    def test_an_adjusted_weekend_day_is_a_working_day(self) -> None:
        # Saturday 2026-10-10 is worked in lieu of the holiday (调休).
        assert date(2026, 10, 10).weekday() == 5
        assert add_working_days(date(2026, 10, 9), 1) == date(2026, 10, 10)

    def test_an_ordinary_weekend_is_skipped(self) -> None:
        assert add_working_days(date(2026, 11, 27), 1) == date(2026, 11, 30)  # Fri -> Mon

    @pytest.mark.parametrize("days", [0, 1, 3, 7, 30])
    def test_counts_exactly_n_working_days(self, days: int) -> None:
        start = date(2026, 1, 20)  # the 30-day clock crosses the Spring Festival
        end = add_working_days(start, days)
        span = [start + timedelta(d) for d in range(1, (end - start).days + 1)]
        assert sum(chinese_calendar.is_workday(d) for d in span) == days
        assert days == 0 or chinese_calendar.is_workday(end)

    def test_backwards_is_the_inverse_between_working_days(self) -> None:
        start = date(2026, 10, 9)
        assert add_working_days(add_working_days(start, 5), -5) == start

    def test_a_year_the_calendar_does_not_know_is_a_clear_error(self) -> None:
        with pytest.raises(CalendarUnavailable) as caught:
            add_working_days(date(2026, 12, 20), 30)
        assert caught.value.status == 503
        assert "2027" in caught.value.detail
        assert "upgrade chinese-calendar" in caught.value.detail
        with pytest.raises(CalendarUnavailable):
            is_working_day(date(1999, 5, 1))


class TestLocalDates:
    def test_today_is_the_shanghai_date_before_eight_in_the_morning(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # 20:30 UTC on 29 November is 04:30 on 30 November in Beijing.
        monkeypatch.setattr(clock, "utc_now", lambda: datetime(2026, 11, 29, 20, 30, tzinfo=UTC))
        assert clock.today() == date(2026, 11, 30)

    def test_end_of_day_is_local_midnight(self) -> None:
        end = end_of_day(date(2026, 11, 30))
        assert end.astimezone(UTC) == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
        assert local_date(end - timedelta(seconds=1)) == date(2026, 11, 30)

    def test_an_unknown_time_zone_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="unknown time zone"):
            Settings(timezone="Mars/Olympus", environment="test", secret_key="s" * 40)


class TestClocksPastTheKnownCalendar:
    """Late in a year a clock reaches into a year the calendar does not know yet."""

    def test_a_deadline_in_an_unknown_year_has_not_come_while_now_is_known(self) -> None:
        now = datetime(2026, 12, 21, 2, 0, tzinfo=UTC)
        assert due_date_if_known(date(2026, 12, 20), 30, now) is None

    def test_a_deadline_inside_the_known_years_is_exact(self) -> None:
        now = datetime(2026, 12, 21, 2, 0, tzinfo=UTC)
        assert due_date_if_known(date(2026, 11, 20), 3, now) == add_working_days(
            date(2026, 11, 20), 3
        )

    def test_once_now_is_in_the_unknown_year_it_is_still_refused(self) -> None:
        # 16:30 UTC on 31 December is already 1 January in Beijing.
        now = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
        with pytest.raises(CalendarUnavailable):
            due_date_if_known(date(2026, 12, 20), 30, now)

    def test_the_supervision_clock_does_not_fail_on_a_fresh_major_problem(self) -> None:
        now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
        cutoff = late_before(local_date(now), 30)  # reads only days before today: no error
        assert now - timedelta(hours=1) >= cutoff
        # A clock that ran out in November is overdue; its escalation, one more period on,
        # falls into the unknown year, so it is not escalated yet.
        started = datetime(2026, 10, 15, 2, 0, tzinfo=UTC)
        assert started < cutoff
        late = clock_item(
            "unresolved",
            started,
            30,
            now,
            request_id=1,
            enterprise_id=1,
            region_code="3505",
            category="financing",
        )
        assert late.due_date < local_date(now)
        assert late.level == 1


def _brute_last_late_start(today: date, days: int) -> date:
    """The definition, tried day by day: the latest start whose due date is before today
    (a due date in a year the calendar does not know is after today, here)."""
    start = today
    while True:
        try:
            if add_working_days(start, days) < today:
                return start
        except CalendarUnavailable:
            pass
        start -= timedelta(days=1)


class TestLateCutOff:
    """Overdue is ``started < late_before(today, days)``: one cut-off per clock length."""

    @pytest.mark.parametrize("days", [0, 1, 3, 7, 30])
    @pytest.mark.parametrize(
        "today",
        [
            date(2026, 1, 5),  # a Monday after New Year
            date(2026, 2, 24),  # just after the Spring Festival week
            date(2026, 10, 9),  # just after National Day, an adjusted working Saturday near
            date(2026, 10, 11),  # a Sunday
            date(2026, 12, 31),  # the last day the calendar knows
            date(2027, 1, 1),  # the first it does not: only past days are read
        ],
    )
    def test_it_is_the_last_start_whose_clock_ran_out(self, today: date, days: int) -> None:
        assert last_late_start(today, days) == _brute_last_late_start(today, days)

    def test_clocks_started_later_are_not_late(self) -> None:
        today = date(2026, 10, 9)
        start = last_late_start(today, 3)
        assert add_working_days(start, 3) < today <= add_working_days(start + timedelta(1), 3)

    def test_it_refuses_when_the_days_to_count_lie_in_an_unknown_year(self) -> None:
        with pytest.raises(CalendarUnavailable):
            last_late_start(date(2027, 1, 20), 5)
