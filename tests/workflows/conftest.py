"""Workflow tests: the real workflow, rules and embedded adapters on the time-skipping server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from adapters.calendar import CalendarResolver
from api.services.users import SEED_BRANCHES
from domain.calendar import WorkingCalendar, china_date
from domain.loan import LoanApplication, Stage
from domain.policy import Policy, load_policy
from settings import PROJECT_DIR, Settings
from store.db import SessionFactory, make_engine, session_factory
from store.migrate import upgrade_database
from store.models import Branch, LoanRecord
from tests.samples import actor
from tests.temporal_env import start_time_skipping
from worker import ACTIVITY_THREADS, INTERCEPTORS, WORKFLOWS, build_activities, build_worker
from workflows.loan import LoanWorkflow
from workflows.messages import ApplyForLoan, LoanStatus, workflow_id_for


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server per test: skipped time must not wake another test's orphaned loans."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(PROJECT_DIR / "policy" / "loanflow-2026.1.toml")


@dataclass
class LoanHarness:
    """A worker on its own task queue and its own SQLite read model, for one test."""

    env: WorkflowEnvironment
    task_queue: str
    sessions: SessionFactory
    policy: Policy

    @property
    def client(self) -> Client:
        return self.env.client

    async def today(self) -> date:
        return china_date(await self.env.get_current_time())

    def calendar(self) -> WorkingCalendar:
        """A-5 working days as the harness's worker resolves them (the shipped tables)."""
        resolver = CalendarResolver(Settings(environment="test").calendar_dir)
        return WorkingCalendar(self.policy.calendar, resolve=resolver.resolve)

    async def wait_for_stage(
        self, handle: WorkflowHandle[Any, Any], stage: Stage, tries: int = 400
    ) -> LoanStatus:
        """Waits until the register row (an activity writes it after the workflow moved)
        shows ``stage``, then asks the loan's latest run for its state.

        The register is watched rather than the workflow: on the time-skipping server a
        query that reaches a run as it continues as new can stall the server's clock."""
        loan_id = handle.id.removeprefix("loan-")
        record: LoanRecord | None = None
        for _ in range(tries):
            with self.sessions() as session:
                record = session.get(LoanRecord, loan_id)
            if record is not None and record.stage == stage.value:
                status: LoanStatus = await self.client.get_workflow_handle(handle.id).query(
                    LoanWorkflow.status
                )
                assert status.stage is stage
                return status
            await asyncio.sleep(0.02)
        status = await self.client.get_workflow_handle(handle.id).query(LoanWorkflow.status)
        raise AssertionError(
            f"loan never reached {stage}; it is in {status.stage} {status.outcome_reasons}"
        )

    async def eventually(self, check: Callable[[], bool], tries: int = 400) -> None:
        """Until ``check()`` holds: activities write the read model after the workflow moves on."""
        for _ in range(tries):
            if check():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the read model never caught up")

    @asynccontextmanager
    async def replacing(self, name: str, replacement: Callable[..., Any]) -> AsyncIterator[None]:
        """A worker whose activity ``name`` is ``replacement`` (registered under that name),
        on a queue of its own; loans applied for inside the block run on it."""
        settings = Settings(environment="test", task_queue=f"{self.task_queue}-{name}")
        activities = [
            a
            for a in build_activities(self.sessions, settings)
            if getattr(a, "__name__", "") != name
        ]
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            async with Worker(
                self.client,
                task_queue=settings.task_queue,
                workflows=list(WORKFLOWS),
                interceptors=list(INTERCEPTORS),
                activities=[*activities, replacement],
                activity_executor=executor,
            ):
                self.task_queue, previous = settings.task_queue, self.task_queue
                try:
                    yield
                finally:
                    self.task_queue = previous

    async def apply(
        self, app: LoanApplication, officer: str = "officer1"
    ) -> WorkflowHandle[LoanWorkflow, object]:
        loan_id = f"T{uuid.uuid4().hex[:10].upper()}"
        return await self.client.start_workflow(
            LoanWorkflow.run,
            ApplyForLoan(
                loan_id=loan_id,
                application=app,
                branch_code="CB01",
                prefecture_code="PF01",
                officer=actor(officer),
                applied_at=await self.env.get_current_time(),
                policy=self.policy,
            ),
            id=workflow_id_for(loan_id),
            task_queue=self.task_queue,
        )


def seed_branches(sessions: SessionFactory) -> None:
    """The development branches: official notices carry their names (and number by them)."""
    with sessions() as session:
        for code, name, tier, parent in SEED_BRANCHES:
            session.add(Branch(code=code, name=name, tier=tier.value, parent_code=parent))
            session.flush()  # parents first
        session.commit()


@pytest.fixture
async def loans(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, policy: Policy
) -> AsyncIterator[LoanHarness]:
    url = f"sqlite:///{tmp_path / 'readmodel.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    seed_branches(session_factory(engine))
    task_queue = f"loans-{uuid.uuid4().hex[:8]}"
    settings = Settings(environment="test", database_url=url, task_queue=task_queue)
    sessions = session_factory(engine)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(time_skipping_env.client, sessions, settings, executor)
        async with worker:
            yield LoanHarness(time_skipping_env, task_queue, sessions, policy)
    engine.dispose()
