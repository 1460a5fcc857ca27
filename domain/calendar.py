"""Working days on the official PRC calendar (工作日), rule A-5.

Pure: a ``WorkingCalendar`` answers from resolved years, each a ``CalendarYear`` (the
weekdays that are off and the weekend days that are worked, and where they came from),
with the pinned policy's extra holidays and workdays on top, date by date. Resolving a
year (the calendar package, the cooperative's holiday table, the statutory holidays
computed by rule, Monday-Friday) reads packages and files: ``adapters.calendar`` does it,
and a workflow gets its years through an activity. Want of data never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.policy import CalendarPolicy

logger = logging.getLogger(__name__)

# Deadlines and business days are China's: one time zone, no daylight saving.
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


def china_date(moment: datetime) -> date:
    """The calendar day in China at an (aware) moment."""
    return moment.astimezone(CHINA).date()


class CalendarSource(StrEnum):
    """Where a year's working days came from, the first layer that has the year."""

    OFFICIAL = "official"  # the chinese_calendar package: the State Council's notices
    TABLE = "table"  # the cooperative's holiday table, transcribed from the notice
    COMPUTED = "computed"  # the statutory holidays by rule; adjusted working days unknown
    WEEKDAYS = "weekdays"  # Monday-Friday, the last resort


class CalendarYear(BaseModel):
    """One year's working days as resolved: the exceptions to Monday-Friday."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    year: int = Field(ge=1, le=9999)
    source: CalendarSource
    basis: str = ""  # the package and version, or the table file and its notice
    days_off: list[date] = Field(default_factory=list)  # weekdays off (放假, 补休)
    workdays: list[date] = Field(default_factory=list)  # weekend days worked (调休上班)

    @model_validator(mode="after")
    def _consistent(self) -> CalendarYear:
        for day in (*self.days_off, *self.workdays):
            if day.year != self.year:
                raise ValueError(f"{day} is not in {self.year}")
        for day in self.days_off:
            if day.weekday() >= 5:
                raise ValueError(f"{day} is a {day:%A}: a day off must be a weekday")
        for day in self.workdays:
            if day.weekday() < 5:
                raise ValueError(f"{day} is a {day:%A}: a working day must be a weekend day")
        return self

    @property
    def settled(self) -> bool:
        """Published data, which a newer release will not change: kept for the loan's life."""
        return self.source in (CalendarSource.OFFICIAL, CalendarSource.TABLE)


def weekdays_year(year: int) -> CalendarYear:
    return CalendarYear(year=year, source=CalendarSource.WEEKDAYS)


class WorkingCalendar:
    """Answers "is this a working day" and counts working days (rule A-5).

    ``years`` are resolved already; a year not among them is asked of ``resolve`` (the
    adapter's resolver outside workflows), and without an answer counted Monday-Friday,
    logged once per year.
    """

    def __init__(
        self,
        overrides: CalendarPolicy,
        years: Iterable[CalendarYear] = (),
        resolve: Callable[[int], CalendarYear | None] | None = None,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] = logger,
    ) -> None:
        # The workflow passes its replay-aware logger, so a replay does not warn again.
        self._log = log
        self._holidays = frozenset(overrides.extra_holidays)
        self._workdays = frozenset(overrides.extra_workdays)
        self._resolve = resolve
        self._years: dict[int, tuple[frozenset[date], frozenset[date]]] = {}
        for year in years:
            self._keep(year)

    def is_working_day(self, day: date) -> bool:
        if day in self._holidays:
            return False
        if day in self._workdays:
            return True
        days_off, workdays = self._year(day.year)
        if day in days_off:
            return False
        return day in workdays or day.weekday() < 5

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day strictly after ``start`` (``days`` >= 1)."""
        if days < 1:
            raise ValueError(f"days must be at least 1, got {days}")
        current = start
        counted = 0
        while counted < days:
            current += timedelta(days=1)
            if self.is_working_day(current):
                counted += 1
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]; 0 when ``end`` is not after ``start``."""
        count = 0
        current = start
        while current < end:
            current += timedelta(days=1)
            if self.is_working_day(current):
                count += 1
        return count

    def _year(self, year: int) -> tuple[frozenset[date], frozenset[date]]:
        known = self._years.get(year)
        if known is not None:
            return known
        resolved = self._resolve(year) if self._resolve is not None else None
        if resolved is None:
            self._log.warning(
                "rule A-5: no calendar data for %d; counting Monday-Friday as working days",
                year,
            )
            resolved = weekdays_year(year)
        return self._keep(resolved)

    def _keep(self, year: CalendarYear) -> tuple[frozenset[date], frozenset[date]]:
        sets = (frozenset(year.days_off), frozenset(year.workdays))
        self._years[year.year] = sets
        return sets
