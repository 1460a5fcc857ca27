"""Working days inside a workflow (rule A-5): each year resolved once, through an activity.

A deadline first makes sure the years it may reach are resolved; the answers are in the
history, so a replay counts the same days whatever the data says by then. Years from
published data (official, a holiday table) are carried across continue-as-new; computed
and Monday-Friday years are asked again in the next run, so a table added meanwhile
reaches the loan's later deadlines.

Runs that counted a deadline before ``calendar-years`` keep reading the calendar package in
the workflow, as they did: origination runs started before it, servicing runs until their
next continue-as-new, and the recorded histories in ``tests/histories``. Deprecate the
patch once none of the first two is open and those histories are re-recorded.
"""

from __future__ import annotations

from datetime import date, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.calendar import CalendarActivities, CalendarYearRequest
    from adapters.calendar import official_year
    from domain.calendar import CalendarYear, WorkingCalendar
    from domain.policy import CalendarPolicy

PATCH = "calendar-years"
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
TIMEOUT = timedelta(seconds=30)


class WorkflowCalendar:
    """A workflow's working days: the years its deadlines reach, resolved once each."""

    def __init__(self, overrides: CalendarPolicy, kept: list[CalendarYear] | None = None) -> None:
        """``kept``: the settled years carried in, extended in place with those resolved
        here, for the next run."""
        self._overrides = overrides
        self.kept = kept if kept is not None else []
        self._years = {y.year: y for y in self.kept}
        self._calendar: WorkingCalendar | None = None

    async def from_day(self, start: date) -> WorkingCalendar:
        """The calendar for a deadline counted from ``start`` (this year's and the next)."""
        if not workflow.patched(PATCH):
            if self._calendar is None:
                self._calendar = WorkingCalendar(
                    self._overrides, resolve=official_year, log=workflow.logger
                )
            return self._calendar
        missing = [y for y in (start.year, start.year + 1) if y not in self._years]
        for year in missing:
            resolved = await workflow.execute_local_activity_method(
                CalendarActivities.resolve_calendar_year,
                CalendarYearRequest(year=year),
                start_to_close_timeout=TIMEOUT,
                retry_policy=RETRY,
            )
            self._years[year] = resolved
            if resolved.settled:
                self.kept.append(resolved)
        if missing or self._calendar is None:
            self._calendar = WorkingCalendar(
                self._overrides, self._years.values(), log=workflow.logger
            )
        return self._calendar
