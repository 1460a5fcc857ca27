"""Where a year's working days come from (rule A-5): the first layer that has the year wins.

1. the official data: the ``chinese_calendar`` package, as far as the State Council's
   notices it carries go;
2. the cooperative's holiday table: ``<calendar_dir>/<year>.toml``, transcribed from the
   notice (国务院办公厅关于<year>年部分节假日安排的通知) until the package catches up;
   every table is validated when the resolver is built (worker start, ``manage.py
   check-policy``), and a bad one stops the process naming the file and the date;
3. the statutory holidays computed for the year by the ``holidays`` package (New Year,
   Spring Festival, Qingming, Labour Day, Dragon Boat, Mid-Autumn, National Day, and a
   weekday off for one on a weekend), logged: the adjusted working days (调休) are unknown;
4. Monday-Friday, logged.
"""

from __future__ import annotations

import logging
import re
import threading
import tomllib
from datetime import date, timedelta
from importlib.metadata import version
from pathlib import Path

import chinese_calendar
import holidays
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.calendar import CalendarSource, CalendarYear, weekdays_year

logger = logging.getLogger(__name__)

TABLE_NAME = re.compile(r"\d{4}\.toml")
# Longer than any arrangement the State Council has published: more likely a typo.
LONGEST_HOLIDAY_DAYS = 14


class CalendarTableError(Exception):
    """A holiday table that cannot be used; the message names the file and the date."""


def _days(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=n) for n in range((date(year, 12, 31) - first).days + 1)]


def official_year(year: int) -> CalendarYear | None:
    """The package's data for ``year``, or None when it has none."""
    try:
        working = {day: chinese_calendar.is_workday(day) for day in _days(year)}
    except NotImplementedError:
        return None
    return CalendarYear(
        year=year,
        source=CalendarSource.OFFICIAL,
        basis=f"chinese_calendar {version('chinese_calendar')}",
        days_off=[d for d, on in working.items() if d.weekday() < 5 and not on],
        workdays=[d for d, on in working.items() if d.weekday() >= 5 and on],
    )


def statutory_holidays(year: int) -> dict[date, str]:
    """The days off that need no notice to know (全国年节及纪念日放假办法), without the
    weekday given for one on a weekend; empty where the package cannot tell."""
    return dict(holidays.China(years=year, observed=False))


def computed_year(year: int) -> CalendarYear | None:
    """The statutory holidays, and a weekday off for one on a weekend, by the package's
    rules; None when it has nothing for ``year``."""
    days = holidays.China(years=year)
    if not days:
        return None
    return CalendarYear(
        year=year,
        source=CalendarSource.COMPUTED,
        basis=f"holidays {holidays.__version__}",
        days_off=sorted(d for d in days if d.weekday() < 5),
    )


class _Holiday(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    first: date  # the first day off (放假), inclusive
    last: date  # the last day off, inclusive
    work: list[date] = Field(default_factory=list)  # the adjusted working days (调休上班)

    def off(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid")

    year: int
    source: str = Field(min_length=1)  # the notice, with its number and date
    holiday: list[_Holiday] = Field(min_length=1)


def load_table(path: Path) -> CalendarYear:
    """One holiday table, checked against itself and the statutory holidays."""
    try:
        table = _Table.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CalendarTableError(f"{path}: cannot be read: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'table'}: {e['msg']}" for e in exc.errors()
        )
        raise CalendarTableError(f"{path}: {problems}") from exc
    try:
        return _table_year(table, path)
    except ValueError as exc:
        raise CalendarTableError(f"{path}: {exc}") from exc


def _table_year(table: _Table, path: Path) -> CalendarYear:
    if path.stem != str(table.year):
        raise ValueError(f"year = {table.year} in a file named for {path.stem}")
    off: dict[date, str] = {}
    work: dict[date, str] = {}
    for holiday in table.holiday:
        for day in (holiday.first, holiday.last, *holiday.work):
            if day.year != table.year:
                raise ValueError(f"{day} ({holiday.name}) is not in {table.year}")
        days = holiday.off()
        if not days:
            raise ValueError(f"{holiday.name}: last {holiday.last} is before first {holiday.first}")
        if len(days) > LONGEST_HOLIDAY_DAYS:
            raise ValueError(
                f"{holiday.name}: {holiday.first} to {holiday.last} is {len(days)} days, "
                f"over {LONGEST_HOLIDAY_DAYS}"
            )
        for day in days:
            if day in off:
                raise ValueError(f"{day} is a day off of both {off[day]} and {holiday.name}")
            off[day] = holiday.name
        work.update(dict.fromkeys(holiday.work, holiday.name))
    for day, name in sorted(work.items()):
        if day.weekday() < 5:
            raise ValueError(
                f"{day} ({name}) is a {day:%A}: an adjusted working day (上班) is a weekend day"
            )
        if day in off:
            raise ValueError(f"{day} ({name}) is both a working day and a day off of {off[day]}")
    for day, name in sorted(statutory_holidays(table.year).items()):
        if (day.weekday() < 5 and day not in off) or day in work:
            raise ValueError(f"{day} is a statutory holiday ({name}) but not a day off here")
    return CalendarYear(
        year=table.year,
        source=CalendarSource.TABLE,
        basis=f"{path.name}: {table.source}",
        days_off=sorted(d for d in off if d.weekday() < 5),
        workdays=sorted(work),
    )


def load_tables(folder: Path) -> dict[int, CalendarYear]:
    """Every ``<year>.toml`` in ``folder``; a missing folder or a bad table raises."""
    if not folder.is_dir():
        raise CalendarTableError(f"{folder}: no such folder (LOANFLOW_CALENDAR_DIR)")
    tables: dict[int, CalendarYear] = {}
    for path in sorted(folder.glob("*.toml")):
        if not TABLE_NAME.fullmatch(path.name):
            raise CalendarTableError(f"{path}: a holiday table is named <year>.toml")
        year = load_table(path)
        tables[year.year] = year
    return tables


class CalendarResolver:
    """Resolves a year through the layers, once per year; logs each fallback once."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._tables = load_tables(folder)  # a bad table stops the process at start
        self._resolved: dict[int, CalendarYear] = {}
        self._lock = threading.Lock()

    @property
    def tables(self) -> dict[int, CalendarYear]:
        return dict(self._tables)

    def resolve(self, year: int) -> CalendarYear:
        with self._lock:
            known = self._resolved.get(year)
            if known is None:
                known = self._resolved[year] = self._first_layer(year)
            return known

    def _first_layer(self, year: int) -> CalendarYear:
        official = official_year(year)
        if official is not None:
            return official
        if year in self._tables:
            logger.info("rule A-5: %d from the holiday table %s", year, self._tables[year].basis)
            return self._tables[year]
        computed = computed_year(year)
        if computed is not None:
            logger.warning(
                "rule A-5: %d has no official data (chinese_calendar) and no holiday table "
                "(%s/%d.toml): counting the statutory holidays computed by %s; adjusted "
                "working days (调休) are unknown until the table is added",
                year,
                self._folder,
                year,
                computed.basis,
            )
            return computed
        logger.warning(
            "rule A-5: no calendar data for %d (official, table or computed); counting "
            "Monday-Friday as working days",
            year,
        )
        return weekdays_year(year)
