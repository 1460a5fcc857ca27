"""The time-skipping test server, as the workflow tests and the history recorder start it.

Its clock starts at the real now. ``LOANFLOW_TEST_START`` moves it forward before a test
begins, so date-sensitive suites also run across February, the Spring Festival or the
National Day whatever day CI runs on: ``2027-01-29`` (that day, if it is still ahead) or
``--01-29`` (the next 29 January on or after today, ISO 8601's date without a year).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from datetime import date, datetime, time, timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.services.audit import loan_runs
from domain.calendar import CHINA, china_date
from settings import Settings, bundled_binary
from workflows.search_attributes import registrations

START_ENV = "LOANFLOW_TEST_START"
# Tests begin at this hour China time on the start day: before the day's servicing batch.
START_HOUR = time(8, 0)


def start_day(spec: str, today: date) -> date:
    """The day a ``LOANFLOW_TEST_START`` value names, seen from ``today`` (China's day)."""
    yearless = re.fullmatch(r"--(\d\d)-(\d\d)", spec)
    if yearless is None:
        day = date.fromisoformat(spec)
        if day < today:
            raise ValueError(
                f"{START_ENV}={spec} is in the past; the time-skipping server only moves "
                f"forward (use --MM-DD for the next such day)"
            )
        return day
    month, dom = int(yearless[1]), int(yearless[2])
    year = today.year
    while True:  # 29 February waits for a leap year
        try:
            day = date(year, month, dom)
        except ValueError:
            if month == 2 and dom == 29:
                year += 1
                continue
            raise ValueError(f"{START_ENV}={spec} is not a day of the year") from None
        if day >= today:
            return day
        year += 1


async def start_time_skipping() -> WorkflowEnvironment:
    """The bundled test server (never downloaded), with the loan search attributes, its clock
    moved to ``LOANFLOW_TEST_START`` when that is set."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(bundled_binary("temporal-test-server")),
        data_converter=Settings(environment="test").data_converter(),  # encrypting (H-3)
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace, search_attributes=registrations()
        )
    )
    spec = os.environ.get(START_ENV, "").strip()
    if spec:
        await _move_clock(env, spec)
    return env


async def _move_clock(env: WorkflowEnvironment, spec: str) -> None:
    now = await env.get_current_time()
    target = datetime.combine(start_day(spec, china_date(now)), START_HOUR, CHINA)
    if target > now + timedelta(seconds=1):
        await env.sleep(target - now)


async def applied_steps(client: Client, loan_id: str) -> Counter[str]:
    """How many times each human step was applied, over every run of the loan's workflow
    (the updates its histories accepted)."""
    applied: Counter[str] = Counter()
    async for _, events in loan_runs(client, loan_id):
        for event in events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                attributes = event.workflow_execution_update_accepted_event_attributes
                applied[attributes.accepted_request.input.name] += 1
    return applied
