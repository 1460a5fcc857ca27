"""Calendar activity: one year's working days for a workflow (rule A-5).

A workflow asks the first time a deadline needs the year and keeps the answer, so its
history holds the days it counted and a replay counts the same, whatever the data now.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio import activity

from adapters.calendar import CalendarResolver
from domain.calendar import CalendarYear


class CalendarYearRequest(BaseModel):
    year: int = Field(ge=1, le=9999)


class CalendarActivities:
    def __init__(self, resolver: CalendarResolver) -> None:
        self._resolver = resolver

    @activity.defn
    def resolve_calendar_year(self, inp: CalendarYearRequest) -> CalendarYear:
        return self._resolver.resolve(inp.year)
