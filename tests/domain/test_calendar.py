"""Working days on the official PRC calendar (rule A-5), with real chinese_calendar data."""

from __future__ import annotations

import logging
from datetime import date

import chinese_calendar
import pytest

from domain.calendar import WorkingCalendar
from domain.policy import CalendarPolicy


def plain_calendar() -> WorkingCalendar:
    return WorkingCalendar(CalendarPolicy())


def test_a5_package_data_as_expected() -> None:
    """Guards the facts the other tests rely on, straight from the package."""
    national_day_2025 = [date(2025, 10, d) for d in range(1, 9)]
    assert all(chinese_calendar.is_holiday(d) for d in national_day_2025)
    assert chinese_calendar.is_workday(date(2025, 10, 11))  # a Saturday, adjusted (调休)
    assert chinese_calendar.is_workday(date(2025, 9, 28))  # a Sunday, adjusted
    assert chinese_calendar.is_workday(date(2026, 10, 10))  # a Saturday, adjusted
    assert chinese_calendar.is_holiday(date(2026, 10, 7))


def test_a5_weekday_weekend_and_holiday() -> None:
    cal = plain_calendar()
    assert cal.is_working_day(date(2026, 3, 16))  # Monday
    assert not cal.is_working_day(date(2026, 3, 14))  # Saturday
    assert not cal.is_working_day(date(2025, 10, 1))  # National Day, a Wednesday


def test_a5_adjusted_weekend_workdays_count() -> None:
    cal = plain_calendar()
    assert date(2025, 10, 11).weekday() == 5 and cal.is_working_day(date(2025, 10, 11))
    assert date(2025, 9, 28).weekday() == 6 and cal.is_working_day(date(2025, 9, 28))
    assert date(2026, 1, 4).weekday() == 6 and cal.is_working_day(date(2026, 1, 4))


def test_a5_deadline_across_national_day_2025() -> None:
    cal = plain_calendar()
    # Tue 2025-09-30 + 7 working days: Oct 1-8 are holidays; Oct 9 (1), 10 (2),
    # Sat 11 adjusted (3), 13 (4), 14 (5), 15 (6), 16 (7).
    assert cal.add_working_days(date(2025, 9, 30), 7) == date(2025, 10, 16)
    # 3 days lands on the adjusted Saturday.
    assert cal.add_working_days(date(2025, 9, 30), 3) == date(2025, 10, 11)
    assert cal.working_days_between(date(2025, 9, 30), date(2025, 10, 16)) == 7
    assert cal.fallback_years == set()


def test_a5_deadline_across_national_day_2026() -> None:
    cal = plain_calendar()
    # Wed 2026-09-30; Oct 1-7 holidays; Thu 8 (1), Fri 9 (2), Sat 10 adjusted (3).
    assert cal.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)


def test_a5_start_day_never_counts() -> None:
    cal = plain_calendar()
    assert cal.add_working_days(date(2026, 3, 16), 1) == date(2026, 3, 17)
    assert cal.add_working_days(date(2026, 3, 14), 1) == date(2026, 3, 16)  # from a Saturday


def test_a5_add_working_days_needs_at_least_one() -> None:
    with pytest.raises(ValueError):
        plain_calendar().add_working_days(date(2026, 3, 16), 0)


def test_a5_working_days_between_empty_and_reversed() -> None:
    cal = plain_calendar()
    assert cal.working_days_between(date(2026, 3, 16), date(2026, 3, 16)) == 0
    assert cal.working_days_between(date(2026, 3, 20), date(2026, 3, 16)) == 0
    assert cal.working_days_between(date(2026, 3, 13), date(2026, 3, 16)) == 1  # Fri -> Mon


def test_a5_fallback_monday_to_friday_for_2030_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cal = plain_calendar()
    with caplog.at_level(logging.WARNING, logger="domain.calendar"):
        # 2030-01-01 is a Tuesday; without data it is simply a weekday.
        assert cal.is_working_day(date(2030, 1, 1))
        assert not cal.is_working_day(date(2030, 1, 5))  # Saturday
        assert cal.add_working_days(date(2030, 1, 4), 1) == date(2030, 1, 7)
        assert cal.working_days_between(date(2030, 1, 1), date(2030, 1, 31)) == 22
    warnings = [r for r in caplog.records if "2030" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "Monday-Friday" in warnings[0].getMessage()
    assert cal.fallback_years == {2030}


def test_a5_fallback_warning_goes_to_the_logger_given(caplog: pytest.LogCaptureFixture) -> None:
    """The workflow hands in its replay-aware logger, so a replay does not warn again."""
    mine = logging.getLogger("tests.calendar")
    cal = WorkingCalendar(CalendarPolicy(), mine)
    with caplog.at_level(logging.WARNING, logger="tests.calendar"):
        cal.is_working_day(date(2031, 3, 3))
    assert [r.name for r in caplog.records if "2031" in r.getMessage()] == ["tests.calendar"]


def test_a5_policy_extra_holidays_for_2027_honoured(caplog: pytest.LogCaptureFixture) -> None:
    # A hypothetical 2027 National Day arrangement published in the policy file.
    policy = CalendarPolicy(
        extra_holidays=[date(2027, 10, d) for d in range(1, 8)],
        extra_workdays=[date(2027, 9, 26), date(2027, 10, 9)],  # Sunday, Saturday
    )
    cal = WorkingCalendar(policy)
    with caplog.at_level(logging.WARNING, logger="domain.calendar"):
        assert not cal.is_working_day(date(2027, 10, 4))  # a Monday, holiday
        assert cal.is_working_day(date(2027, 9, 26))
        assert cal.is_working_day(date(2027, 10, 9))
        assert not cal.is_working_day(date(2027, 10, 16))  # ordinary Saturday
        assert cal.is_working_day(date(2027, 3, 1))  # ordinary Monday
        # Thu 2027-09-30 + 2: Fri Oct 8 (1), Sat Oct 9 adjusted (2).
        assert cal.add_working_days(date(2027, 9, 30), 2) == date(2027, 10, 9)
    assert cal.fallback_years == set()
    assert not [r for r in caplog.records if r.name == "domain.calendar"]


def test_a5_policy_dates_override_package_data() -> None:
    policy = CalendarPolicy(extra_holidays=[date(2026, 3, 17)], extra_workdays=[date(2026, 3, 21)])
    cal = WorkingCalendar(policy)
    assert not cal.is_working_day(date(2026, 3, 17))  # a Tuesday made a holiday
    assert cal.is_working_day(date(2026, 3, 21))  # a Saturday made a workday
