"""Resolving a year's working days (rule A-5): the package, a table, the statutory
holidays, Monday-Friday; the tables checked at start; the activity."""

from __future__ import annotations

import logging
import re
from datetime import date
from pathlib import Path

import chinese_calendar
import pytest
from temporalio.testing import ActivityEnvironment

from activities.calendar import CalendarActivities, CalendarYearRequest
from adapters.calendar import (
    CalendarResolver,
    CalendarTableError,
    load_table,
    official_year,
    statutory_holidays,
)
from domain.calendar import CalendarSource, WorkingCalendar
from domain.policy import CalendarPolicy
from manage import check_calendar
from settings import PROJECT_DIR, Settings
from store.db import make_engine, session_factory
from worker import build_activities

# 2029: far enough that no package release here has it; the guard below says so.
YEAR = 2029
NEW_YEAR = date(YEAR, 1, 1)  # a Monday
SPRING_FESTIVAL = [date(YEAR, 2, d) for d in (12, 13, 14, 15)]  # 除夕 and 正月初一..初三
# A made-up arrangement for 2029 in the notice's form (not official): Spring Festival nine
# days with two adjusted Saturdays, the others as the statutory days fall.
TABLE_2029 = """
year = 2029
source = "a test arrangement, not the State Council's"

[[holiday]]
name = "元旦"
first = 2029-01-01
last = 2029-01-01
""" + "".join(
    f'\n[[holiday]]\nname = "{name}"\nfirst = {first}\nlast = {last}\nwork = [{work}]\n'
    for name, first, last, work in [
        ("春节", "2029-02-10", "2029-02-18", "2029-02-03, 2029-02-24"),
        ("清明节", "2029-04-04", "2029-04-06", "2029-04-08"),
        ("劳动节", "2029-05-01", "2029-05-05", "2029-04-28"),
        ("端午节", "2029-06-16", "2029-06-18", ""),
        ("中秋节", "2029-09-22", "2029-09-24", ""),
        ("国庆节", "2029-10-01", "2029-10-07", "2029-09-29, 2029-10-13"),
    ]
)


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def calendar(resolver: CalendarResolver) -> WorkingCalendar:
    return WorkingCalendar(CalendarPolicy(), resolve=resolver.resolve)


@pytest.fixture
def empty(tmp_path: Path) -> CalendarResolver:
    (tmp_path / "calendar").mkdir()
    return CalendarResolver(tmp_path / "calendar")


def test_a5_package_data_as_expected() -> None:
    """Guards the facts the other tests rely on, straight from the package."""
    national_day_2025 = [date(2025, 10, d) for d in range(1, 9)]
    assert all(chinese_calendar.is_holiday(d) for d in national_day_2025)
    assert chinese_calendar.is_workday(date(2025, 10, 11))  # a Saturday, adjusted (调休)
    assert chinese_calendar.is_workday(date(2026, 10, 10))  # a Saturday, adjusted
    assert official_year(YEAR) is None


def test_a5_official_years_come_from_the_package(empty: CalendarResolver) -> None:
    year = empty.resolve(2025)
    assert (year.source, year.settled) == (CalendarSource.OFFICIAL, True)
    assert year.basis.startswith("chinese_calendar ")
    cal = calendar(empty)
    assert not cal.is_working_day(date(2025, 10, 1))  # National Day, a Wednesday
    assert cal.is_working_day(date(2025, 9, 28))  # a Sunday, adjusted
    # Tue 2025-09-30 + 7: Oct 1-8 off; 9 (1), 10 (2), Sat 11 adjusted (3), 13..16 (7).
    assert cal.add_working_days(date(2025, 9, 30), 7) == date(2025, 10, 16)
    # Wed 2026-09-30; Oct 1-7 off; Thu 8 (1), Fri 9 (2), Sat 10 adjusted (3).
    assert cal.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)


def test_a5_without_official_data_new_year_and_spring_festival_are_off(
    empty: CalendarResolver, caplog: pytest.LogCaptureFixture
) -> None:
    cal = calendar(empty)
    with caplog.at_level(logging.INFO, logger="adapters.calendar"):
        assert not cal.is_working_day(NEW_YEAR)
        assert not any(cal.is_working_day(d) for d in SPRING_FESTIVAL)
        assert cal.is_working_day(date(YEAR, 2, 16))  # the Friday after: unknown 调休
        assert empty.resolve(YEAR).source is CalendarSource.COMPUTED
        assert not empty.resolve(YEAR).settled
    [warning] = [r for r in caplog.records if str(YEAR) in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "adjusted working days (调休) are unknown" in warning.getMessage()
    assert f"{YEAR}.toml" in warning.getMessage()
    # Fri 02-09 + 2: Mon 12..Thu 15 off; Fri 16 (1), Mon 19 (2).
    assert cal.add_working_days(date(YEAR, 2, 9), 2) == date(YEAR, 2, 19)


def test_a5_statutory_holidays_of_future_years() -> None:
    """Each of the seven holidays, from the package, for a year without a notice."""
    names = set(statutory_holidays(YEAR).values())
    for holiday in (
        "New Year's Day",
        "Chinese New Year (Spring Festival)",
        "Tomb-Sweeping Day",
        "Labor Day",
        "Dragon Boat Festival",
        "Mid-Autumn Festival",
        "National Day",
    ):
        assert holiday in names


def test_a5_a_table_overrides_the_computed_days(tmp_path: Path) -> None:
    write(tmp_path / "calendar", f"{YEAR}.toml", TABLE_2029)
    resolver = CalendarResolver(tmp_path / "calendar")
    year = resolver.resolve(YEAR)
    assert (year.source, year.settled, year.basis) == (
        CalendarSource.TABLE,
        True,
        "2029.toml: a test arrangement, not the State Council's",
    )
    cal = calendar(resolver)
    assert not cal.is_working_day(date(YEAR, 2, 16))  # a Friday the computed days work
    assert cal.is_working_day(date(YEAR, 2, 24))  # a Saturday worked (调休上班)
    assert not cal.is_working_day(NEW_YEAR)
    # Fri 02-09 + 2: Sat 10..Sun 18 off; Mon 19 (1), Tue 20 (2).
    assert cal.add_working_days(date(YEAR, 2, 9), 2) == date(YEAR, 2, 20)
    assert resolver.tables == {YEAR: year}


def test_a5_the_documented_example_is_the_official_2026(tmp_path: Path) -> None:
    """policy/calendar/README.md's example, the 2026 notice, gives the package's days."""
    readme = (PROJECT_DIR / "policy" / "calendar" / "README.md").read_text(encoding="utf-8")
    [example] = re.findall(r"```toml\n(.*?)```", readme, re.S)
    table = load_table(write(tmp_path, "2026.toml", example))
    official = official_year(2026)
    assert official is not None
    assert (table.days_off, table.workdays) == (official.days_off, official.workdays)


def test_a5_monday_to_friday_last_logged_once(
    empty: CalendarResolver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="adapters.calendar"):
        first, again = empty.resolve(2101), empty.resolve(2101)
    assert first is again
    assert (first.source, first.days_off, first.workdays) == (CalendarSource.WEEKDAYS, [], [])
    [warning] = [r for r in caplog.records if "2101" in r.getMessage()]
    assert "Monday-Friday" in warning.getMessage()


def swap(old: str, new: str) -> str:
    return TABLE_2029.replace(old, new)


BAD_TABLES = [
    ("2029.toml", "year = 2029\nsource = 'x'\n[[holiday]\n", "cannot be read"),
    ("2029.toml", TABLE_2029 + "\nnote = 'x'\n", "note: Extra inputs are not permitted"),
    ("2029.toml", swap("2029-02-24", "2029-02-22"), "2029-02-22 (春节) is a Thursday"),
    ("2029.toml", swap("2029-02-24", "2029-02-17"), "2029-02-17 (春节) is both"),
    ("2029.toml", swap("first = 2029-10-01", "first = 2029-09-24"), "2029-09-24 is a day off"),
    ("2029.toml", swap("last = 2029-02-18", "last = 2029-02-08"), "last 2029-02-08 is before"),
    ("2029.toml", swap("last = 2029-10-07", "last = 2029-10-15"), "15 days, over 14"),
    ("2029.toml", swap("first = 2029-04-04", "first = 2029-04-05"), "2029-04-04 is a statutory"),
    ("2029.toml", swap("2029-02-03", "2028-12-30"), "2028-12-30 (春节) is not in 2029"),
    ("2030.toml", TABLE_2029, "year = 2029 in a file named for 2030"),
    ("holidays.toml", TABLE_2029, "named <year>.toml"),
]


@pytest.mark.parametrize(("name", "text", "reason"), BAD_TABLES)
def test_a5_a_bad_table_is_refused_naming_the_file_and_the_date(
    tmp_path: Path, name: str, text: str, reason: str
) -> None:
    path = write(tmp_path / "calendar", name, text)
    with pytest.raises(CalendarTableError) as refused:
        CalendarResolver(tmp_path / "calendar")
    assert str(refused.value).startswith(f"{path}: ")
    assert reason in str(refused.value)


def test_a5_a_bad_table_stops_the_worker_and_check_policy(tmp_path: Path) -> None:
    path = write(tmp_path / "calendar", f"{YEAR}.toml", swap("2029-02-24", "2029-02-22"))
    settings = Settings(environment="test", calendar_dir=tmp_path / "calendar")
    engine = make_engine(f"sqlite:///{tmp_path / 'unused.db'}")
    with pytest.raises(CalendarTableError, match=re.escape(f"{path}: 2029-02-22")):
        build_activities(session_factory(engine), settings)
    engine.dispose()
    with pytest.raises(SystemExit, match=re.escape(f"loanflow: {path}: 2029-02-22")):
        check_calendar(tmp_path / "calendar")
    with pytest.raises(CalendarTableError, match="no such folder"):
        CalendarResolver(tmp_path / "missing")


def test_a5_the_activity_answers_one_year(empty: CalendarResolver) -> None:
    activities = CalendarActivities(empty)
    env = ActivityEnvironment()
    year = env.run(activities.resolve_calendar_year, CalendarYearRequest(year=YEAR))
    assert year == empty.resolve(YEAR)
    assert NEW_YEAR in year.days_off and year.workdays == []
    assert all(d.weekday() < 5 for d in year.days_off)
    assert date(YEAR, 6, 18) in year.days_off  # 端午 on a Saturday: the Monday off
