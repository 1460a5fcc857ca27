"""Working days on the official PRC calendar (工作日), rule A-5.

A date is resolved in this order: the policy's extra holidays and workdays;
the chinese_calendar package for years it has data for; for a year the policy
covers with at least one extra date, weekends off and weekdays on; otherwise a
Monday-Friday fallback, logged once per year. Want of data never raises.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

import chinese_calendar

from domain.policy import CalendarPolicy

logger = logging.getLogger(__name__)

# Deadlines and business days are China's: one time zone, no daylight saving.
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


def china_date(moment: datetime) -> date:
    """The calendar day in China at an (aware) moment."""
    return moment.astimezone(CHINA).date()


class WorkingCalendar:
    """Answers "is this a working day" and counts working days (rule A-5)."""

    def __init__(
        self,
        policy: CalendarPolicy,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] = logger,
    ) -> None:
        # The workflow passes its replay-aware logger, so a replay does not warn again.
        self._log = log
        self._holidays = frozenset(policy.extra_holidays)
        self._workdays = frozenset(policy.extra_workdays)
        self._policy_years = frozenset(d.year for d in self._holidays | self._workdays)
        self._package_years: dict[int, bool] = {}
        self._fallback_years: set[int] = set()

    @property
    def fallback_years(self) -> set[int]:
        """Years for which the Monday-Friday fallback was used."""
        return set(self._fallback_years)

    def is_working_day(self, day: date) -> bool:
        if day in self._holidays:
            return False
        if day in self._workdays:
            return True
        if self._package_has(day.year):
            return bool(chinese_calendar.is_workday(day))
        if day.year not in self._policy_years and day.year not in self._fallback_years:
            self._fallback_years.add(day.year)
            self._log.warning(
                "rule A-5: no official calendar data for %d (neither chinese_calendar nor the "
                "policy file); counting Monday-Friday as working days",
                day.year,
            )
        return day.weekday() < 5

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

    def _package_has(self, year: int) -> bool:
        known = self._package_years.get(year)
        if known is None:
            try:
                chinese_calendar.is_workday(date(year, 1, 1))
                known = True
            except NotImplementedError:
                known = False
            self._package_years[year] = known
        return known
