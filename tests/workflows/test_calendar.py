"""Working days for any year (rule A-5) in a running loan: a year without official data
counts on the computed statutory holidays, and a holiday table added while the loan runs
changes neither its history nor the deadline it counted; later deadlines use the table."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

from temporalio.worker import Replayer, Worker

from adapters.calendar import CalendarResolver, official_year, statutory_holidays
from domain.approval import decision_deadline
from domain.calendar import CHINA, CalendarSource, WorkingCalendar
from domain.loan import Stage
from settings import Settings
from tests.samples import application
from tests.temporal_env import START_HOUR
from tests.workflows.conftest import LoanHarness
from tests.workflows.steps import disbursed
from worker import ACTIVITY_THREADS, INTERCEPTORS, WORKFLOWS, build_activities
from workflows.loan import LoanWorkflow
from workflows.messages import ServiceLoan


@asynccontextmanager
async def worker_reading(loans: LoanHarness, tables: Path) -> AsyncIterator[None]:
    """The deployment's worker, its calendar resolver reading ``tables`` (built, so checked,
    on entry), on a queue of its own; loans applied for inside the block run on it. It caches
    no workflow: every task replays the loan's history, and a worker started after it gets
    the loan's next task (the test server keeps no sticky queue of a stopped worker)."""
    queue = loans.task_queue.removesuffix("-a5") + "-a5"
    settings = Settings(environment="test", task_queue=queue, calendar_dir=tables)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with Worker(
            loans.client,
            task_queue=queue,
            workflows=list(WORKFLOWS),
            interceptors=list(INTERCEPTORS),
            activities=build_activities(loans.sessions, settings, loans.client),
            activity_executor=executor,
            max_cached_workflows=0,
        ):
            loans.task_queue, previous = queue, loans.task_queue
            try:
                yield
            finally:
                loans.task_queue = previous


def table_for(year: int, spring_festival_days: int) -> str:
    """A made-up arrangement (not the State Council's): the statutory holidays as they fall,
    the Spring Festival stretched to ``spring_festival_days`` days off."""
    days = sorted(statutory_holidays(year).items())
    runs: list[list[tuple[date, str]]] = []
    for day, name in days:
        if runs and day - runs[-1][-1][0] == timedelta(days=1):
            runs[-1].append((day, name))
        else:
            runs.append([(day, name)])
    spring = runs[1]  # after New Year's Day: the eve and the first days of the lunar year
    assert spring[0][0].month in (1, 2)
    lines = [f'year = {year}\nsource = "a test arrangement"\n']
    for run in runs:
        (first, name), last = run[0], run[-1][0]
        if run is spring:
            last = first + timedelta(days=spring_festival_days - 1)
        lines.append(f'[[holiday]]\nname = "{name}"\nfirst = {first}\nlast = {last}\n')
    return "\n".join(lines)


def deadline(loans: LoanHarness, start: date, calendar: WorkingCalendar) -> date:
    return decision_deadline(start, False, False, loans.policy, calendar)


async def test_a5_a_table_added_while_a_loan_runs_changes_nothing_it_counted(
    loans: LoanHarness, tmp_path: Path
) -> None:
    tables = tmp_path / "calendar"
    tables.mkdir()
    # The first year after the server's today without official data, two days before
    # its Spring Festival: the A-4 clock runs across the holiday.
    today = await loans.today()
    year = next(y for y in itertools.count(today.year + 1) if official_year(y) is None)
    start = min(d for d in statutory_holidays(year) if d > date(year, 1, 1)) - timedelta(days=2)
    now = await loans.env.get_current_time()
    await loans.env.sleep(datetime.combine(start, START_HOUR, CHINA) - now)
    assert await loans.today() == start

    computed = WorkingCalendar(loans.policy.calendar, resolve=CalendarResolver(tables).resolve)
    first_due = deadline(loans, start, computed)
    monday_to_friday = deadline(loans, start, WorkingCalendar(loans.policy.calendar, [], None))
    assert first_due > monday_to_friday  # the Spring Festival counted

    async with worker_reading(loans, tables):
        handle = await loans.apply(application(start))
        status = await loans.wait_for_stage(handle, Stage.INVESTIGATION)
    assert status.decision_due == first_due
    history = await handle.fetch_history()

    # The cooperative adds the year's table; the worker is restarted and reads it.
    (tables / f"{year}.toml").write_text(table_for(year, 9), encoding="utf-8")
    resolver = CalendarResolver(tables)
    assert resolver.resolve(year).source is CalendarSource.TABLE
    table_due = deadline(loans, start, WorkingCalendar(loans.policy.calendar, [], resolver.resolve))
    assert table_due > first_due  # the table's longer Spring Festival matters

    async with worker_reading(loans, tables):
        # A new worker rebuilds the running loan from its history: the same deadline.
        again = await loans.client.get_workflow_handle(handle.id).query(LoanWorkflow.status)
        assert again.decision_due == first_due
        # A loan whose clock starts now counts on the table.
        later = await loans.apply(application(start))
        assert (await loans.wait_for_stage(later, Stage.INVESTIGATION)).decision_due == table_due

    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=loans.client.data_converter)
    assert (await replayer.replay_workflow(history)).replay_failure is None


async def test_a5_published_years_are_carried_into_post_loan_management(
    loans: LoanHarness, tmp_path: Path
) -> None:
    """Years of the package or a table go with the loan across continue-as-new; a
    computed year does not (the next run asks again)."""
    tables = tmp_path / "calendar"
    tables.mkdir()
    today = await loans.today()
    if official_year(today.year + 1) is None:
        (tables / f"{today.year + 1}.toml").write_text(table_for(today.year + 1, 7), "utf-8")
    resolver = CalendarResolver(tables)
    resolved = [resolver.resolve(y) for y in (today.year, today.year + 1)]
    assert resolved[1].settled

    async with worker_reading(loans, tables):
        handle, _ = await disbursed(loans, application(today))
        started = (await handle.fetch_history()).events[0]
    payloads = started.workflow_execution_started_event_attributes.input.payloads
    [servicing] = await loans.client.data_converter.decode(payloads, [ServiceLoan])
    assert servicing.state.calendar_years == [y for y in resolved if y.settled]
