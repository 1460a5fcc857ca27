"""Working days from resolved years (rule A-5): the pure calendar, no package, no file."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from pydantic import ValidationError

from domain.calendar import CalendarSource, CalendarYear, WorkingCalendar, weekdays_year
from domain.policy import CalendarPolicy

# A National Day week as the State Council arranges one: Oct 1-7 off (the weekdays among
# them listed), Sunday Sep 26 and Saturday Oct 9 worked. Made up for 2027: not official.
YEAR_2027 = CalendarYear(
    year=2027,
    source=CalendarSource.TABLE,
    basis="2027.toml: a test arrangement",
    days_off=[date(2027, 10, d) for d in (1, 4, 5, 6, 7)],
    workdays=[date(2027, 9, 26), date(2027, 10, 9)],
)


def test_a5_resolved_year_days_off_and_adjusted_workdays() -> None:
    cal = WorkingCalendar(CalendarPolicy(), [YEAR_2027])
    assert not cal.is_working_day(date(2027, 10, 4))  # a Monday off
    assert not cal.is_working_day(date(2027, 10, 2))  # a Saturday, off anyway
    assert cal.is_working_day(date(2027, 9, 26))  # a Sunday worked (调休上班)
    assert cal.is_working_day(date(2027, 10, 9))  # a Saturday worked
    assert not cal.is_working_day(date(2027, 10, 16))  # an ordinary Saturday
    assert cal.is_working_day(date(2027, 3, 1))  # an ordinary Monday
    # Thu 09-30 + 2: Fri 10-01..Thu 10-07 off; Fri 10-08 (1), Sat 10-09 adjusted (2).
    assert cal.add_working_days(date(2027, 9, 30), 2) == date(2027, 10, 9)
    assert cal.working_days_between(date(2027, 9, 30), date(2027, 10, 9)) == 2


def test_a5_policy_overrides_win_over_the_resolved_year() -> None:
    policy = CalendarPolicy(extra_holidays=[date(2027, 10, 8)], extra_workdays=[date(2027, 10, 4)])
    cal = WorkingCalendar(policy, [YEAR_2027])
    assert not cal.is_working_day(date(2027, 10, 8))
    assert cal.is_working_day(date(2027, 10, 4))


def test_a5_start_day_never_counts_and_at_least_one_day() -> None:
    cal = WorkingCalendar(CalendarPolicy(), [weekdays_year(2030)])
    assert cal.add_working_days(date(2030, 3, 4), 1) == date(2030, 3, 5)  # Mon -> Tue
    assert cal.add_working_days(date(2030, 3, 2), 1) == date(2030, 3, 4)  # from a Saturday
    with pytest.raises(ValueError):
        cal.add_working_days(date(2030, 3, 4), 0)


def test_a5_working_days_between_empty_and_reversed() -> None:
    cal = WorkingCalendar(CalendarPolicy(), [weekdays_year(2030)])
    assert cal.working_days_between(date(2030, 3, 4), date(2030, 3, 4)) == 0
    assert cal.working_days_between(date(2030, 3, 8), date(2030, 3, 4)) == 0
    assert cal.working_days_between(date(2030, 3, 1), date(2030, 3, 4)) == 1  # Fri -> Mon


def test_a5_a_year_is_resolved_once_when_first_needed() -> None:
    asked: list[int] = []

    def resolve(year: int) -> CalendarYear | None:
        asked.append(year)
        return YEAR_2027 if year == 2027 else None

    cal = WorkingCalendar(CalendarPolicy(), resolve=resolve)
    assert asked == []
    assert not cal.is_working_day(date(2027, 10, 5))
    assert cal.add_working_days(date(2027, 9, 30), 2) == date(2027, 10, 9)
    assert asked == [2027]


def test_a5_no_data_counts_monday_to_friday_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    cal = WorkingCalendar(CalendarPolicy(), resolve=lambda year: None)
    with caplog.at_level(logging.WARNING, logger="domain.calendar"):
        assert cal.is_working_day(date(2030, 1, 1))  # a Tuesday: without data, a weekday
        assert not cal.is_working_day(date(2030, 1, 5))  # Saturday
        assert cal.working_days_between(date(2030, 1, 1), date(2030, 1, 31)) == 22
    warnings = [r for r in caplog.records if "2030" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "Monday-Friday" in warnings[0].getMessage()


def test_a5_fallback_warning_goes_to_the_logger_given(caplog: pytest.LogCaptureFixture) -> None:
    """The workflow hands in its replay-aware logger, so a replay does not warn again."""
    mine = logging.getLogger("tests.calendar")
    cal = WorkingCalendar(CalendarPolicy(), log=mine)
    with caplog.at_level(logging.WARNING, logger="tests.calendar"):
        cal.is_working_day(date(2031, 3, 3))
    assert [r.name for r in caplog.records if "2031" in r.getMessage()] == ["tests.calendar"]


def test_a5_only_published_years_are_settled() -> None:
    assert YEAR_2027.settled
    assert YEAR_2027.model_copy(update={"source": CalendarSource.OFFICIAL}).settled
    assert not weekdays_year(2030).settled
    assert not CalendarYear(year=2030, source=CalendarSource.COMPUTED).settled


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"days_off": [date(2027, 10, 2)]}, "2027-10-02 is a Saturday"),
        ({"workdays": [date(2027, 10, 8)]}, "2027-10-08 is a Friday"),
        ({"days_off": [date(2026, 12, 31)]}, "2026-12-31 is not in 2027"),
    ],
)
def test_a5_a_year_contradicting_itself_is_refused(
    fields: dict[str, list[date]], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        CalendarYear(year=2027, source=CalendarSource.TABLE, **fields)  # type: ignore[arg-type]
