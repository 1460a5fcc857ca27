"""Records the workflow histories that the replay test keeps replaying.

    .venv/bin/python -m tests.histories.record SHAPE

Run it only when a workflow changes shape, to keep a history of the new shape; never to
"fix" a failing replay test: a replay failure means running loans would break (use
``workflow.patched`` instead). It records a loan from application through its first
months of post-loan management, one file per run (``SHAPE_run_NN.json``), and refuses to
overwrite a shape already recorded. Kept as recorded: ``origination_happy_path.json`` by
the code before servicing existed (commit 1280708, a loan parked at disbursement),
``servicing_run_NN.json`` by the servicing code before the "lean" patch, ``lean_run_NN.json``
under it, ``keyed_run_NN.json`` with steps keyed for exactly-once and calendar years
resolved by an activity (issue 9).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from api.services.audit import loan_runs
from api.services.users import seed_development_data
from domain.calendar import CHINA, china_date
from domain.inspection import InspectionFindings
from domain.loan import Stage
from domain.policy import load_policy
from domain.step_keys import step_id
from settings import PROJECT_DIR, Settings
from store.db import SessionFactory, make_engine, session_factory
from store.migrate import upgrade_database
from store.models import LoanRecord
from tests.samples import actor, application, approve, forward, report, signing
from tests.temporal_env import start_time_skipping
from tests.workflows.steps import spend_proceeds
from worker import ACTIVITY_THREADS, build_worker
from workflows.loan import LoanWorkflow
from workflows.messages import (
    ApplyForLoan,
    DecideLoan,
    LoanStatus,
    RecordPayment,
    ReportInspection,
    SignContract,
    SubmitInvestigation,
    SubmitReview,
    workflow_id_for,
)
from workflows.servicing import LoanServicingWorkflow

HISTORIES = Path(__file__).parent


async def record_servicing_runs(shape: str) -> list[Path]:
    """A business loan: paid out, first check reported, one installment collected, the next
    missed (the ladder, the notices, a special check), then the arrears paid at the counter."""
    if list(HISTORIES.glob(f"{shape}_run_*.json")):
        raise SystemExit(f"{shape}_run_*.json are recorded already: name the new shape")
    env = await start_time_skipping()
    paths: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/record.db"
        upgrade_database(url)
        engine = make_engine(url)
        sessions = session_factory(engine)
        with sessions() as session:
            seed_development_data(session)  # branches: notices are numbered by them
        settings = Settings(environment="test", database_url=url, task_queue="record")
        policy = load_policy(PROJECT_DIR / "policy" / "loanflow-2026.1.toml")
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            async with build_worker(env.client, sessions, settings, executor):
                today = china_date(await env.get_current_time())
                loan_id = f"REC{uuid.uuid4().hex[:8].upper()}"
                app = application(today)
                first = await env.client.start_workflow(
                    LoanWorkflow.run,
                    ApplyForLoan(
                        loan_id=loan_id,
                        application=app,
                        branch_code="CB01",
                        prefecture_code="PF01",
                        officer=actor("officer1"),
                        applied_at=await env.get_current_time(),
                        policy=policy,
                    ),
                    id=workflow_id_for(loan_id),
                    task_queue=settings.task_queue,
                )
                await _wait_for_register(sessions, loan_id, Stage.INVESTIGATION)
                for officer in ("officer1", "officer2"):
                    await _step(first, 
                        LoanWorkflow.submit_investigation,
                        SubmitInvestigation(actor=actor(officer), report=report()),
                    )
                await _step(first, 
                    LoanWorkflow.review_loan,
                    SubmitReview(actor=actor("reviewer1"), review=forward()),
                )
                await _step(first, 
                    LoanWorkflow.decide_loan,
                    DecideLoan(actor=actor("approver1"), decision=approve()),
                )
                await _step(first, 
                    LoanWorkflow.sign_contract,
                    SignContract(actor=actor("officer1"), signing=signing(today)),
                )
                await _wait_for_register(sessions, loan_id, Stage.REPAYING)
                loan = env.client.get_workflow_handle(workflow_id_for(loan_id))
                status = await loan.query(LoanServicingWorkflow.status)
                assert status.servicing is not None and status.approved is not None
                spend_proceeds(sessions, status, app.applicant.settlement_account)
                schedule = status.schedule
                await _sleep_until(env, today + timedelta(days=5))
                await _step(loan, 
                    LoanServicingWorkflow.report_inspection,
                    ReportInspection(
                        actor=actor("officer1"),
                        task_key=status.servicing.inspections[0].task_key,
                        findings=InspectionFindings(
                            purpose_kept=True,
                            business_normal=True,
                            household_income="养殖收入稳定",
                            health="良好",
                            marriage="已婚",
                            contact_details_current=True,
                        ),
                    ),
                )
                await _pay(loan, schedule[0].payment)
                await _sleep_until(env, schedule[1].due_date + timedelta(days=2))
                arrears = (await _pay(loan, Decimal("0.01"))).servicing
                assert arrears is not None
                await _pay(loan, arrears.arrears)
                await _sleep_until(env, schedule[1].due_date + timedelta(days=3))
                async for run_id, events in loan_runs(env.client, loan_id):
                    handle = env.client.get_workflow_handle(workflow_id_for(loan_id), run_id=run_id)
                    history = await handle.fetch_history()
                    paths.append(HISTORIES / f"{shape}_run_{len(paths) + 1:02d}.json")
                    paths[-1].write_text(history.to_json(), encoding="utf-8")
                    assert events  # every run of the chain is kept
        engine.dispose()
    await env.shutdown()
    return paths


_steps = itertools.count(1)


async def _step(handle: WorkflowHandle[Any, Any], update: Any, arg: Any) -> Any:
    """A step as the API sends it: with a step id the loan remembers (domain/step_keys.py)."""
    n = next(_steps)
    return await handle.execute_update(update, arg, id=step_id(f"{n:016x}", f"{n:016x}"))


async def _wait_for_register(sessions: SessionFactory, loan_id: str, stage: Stage) -> None:
    while True:
        with sessions() as session:
            record = session.get(LoanRecord, loan_id)
            if record is not None and record.stage == stage.value:
                return
        await asyncio.sleep(0.05)


async def _sleep_until(env: WorkflowEnvironment, day: date) -> None:
    target = datetime.combine(day, time(12), CHINA)
    now = await env.get_current_time()
    if target > now:
        await env.sleep(target - now)


async def _pay(handle: WorkflowHandle[Any, Any], amount: Decimal) -> LoanStatus:
    status: LoanStatus = await _step(
        handle,
        LoanServicingWorkflow.record_payment,
        RecordPayment(actor=actor("teller1"), amount=amount, reference="REC"),
    )
    return status


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isidentifier():
        raise SystemExit("usage: python -m tests.histories.record SHAPE  (e.g. keyed)")
    print(f"recorded {[p.name for p in asyncio.run(record_servicing_runs(sys.argv[1]))]}")
