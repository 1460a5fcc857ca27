"""Records the workflow histories that the replay test keeps replaying.

    .venv/bin/python -m tests.histories.record

Run it only when a history is to be added; never to "fix" a failing replay test: a
replay failure means running loans would break (use ``workflow.patched`` instead).
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from api.services.users import seed_development_data
from domain.calendar import china_date
from domain.loan import Stage
from domain.policy import load_policy
from settings import PROJECT_DIR, Settings
from store.db import make_engine, session_factory
from store.migrate import upgrade_database
from tests.samples import actor, application, approve, forward, report, signing
from tests.temporal_env import start_time_skipping
from worker import ACTIVITY_THREADS, build_worker
from workflows.loan import LoanWorkflow
from workflows.messages import (
    ApplyForLoan,
    DecideLoan,
    SignContract,
    SubmitInvestigation,
    SubmitReview,
    workflow_id_for,
)

HISTORIES = Path(__file__).parent


async def record_origination_happy_path() -> Path:
    env = await start_time_skipping()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/record.db"
        upgrade_database(url)
        engine = make_engine(url)
        sessions = session_factory(engine)
        with sessions() as session:
            seed_development_data(session)
        settings = Settings(environment="test", database_url=url, task_queue="record")
        policy = load_policy(PROJECT_DIR / "policy" / "loanflow-2026.1.toml")
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            async with build_worker(env.client, sessions, settings, executor):
                today = china_date(await env.get_current_time())
                loan_id = f"REC{uuid.uuid4().hex[:8].upper()}"
                handle = await env.client.start_workflow(
                    LoanWorkflow.run,
                    ApplyForLoan(
                        loan_id=loan_id,
                        application=application(today),
                        branch_code="CB01",
                        prefecture_code="PF01",
                        officer=actor("officer1"),
                        applied_at=datetime.now(UTC),
                        policy=policy,
                    ),
                    id=workflow_id_for(loan_id),
                    task_queue=settings.task_queue,
                )
                while (await handle.query(LoanWorkflow.status)).stage is not Stage.INVESTIGATION:
                    await asyncio.sleep(0.05)
                for officer in ("officer1", "officer2"):
                    await handle.execute_update(
                        LoanWorkflow.submit_investigation,
                        SubmitInvestigation(actor=actor(officer), report=report()),
                    )
                await handle.execute_update(
                    LoanWorkflow.review_loan,
                    SubmitReview(actor=actor("reviewer1"), review=forward()),
                )
                await handle.execute_update(
                    LoanWorkflow.decide_loan,
                    DecideLoan(actor=actor("approver1"), decision=approve()),
                )
                await handle.execute_update(
                    LoanWorkflow.sign_contract,
                    SignContract(actor=actor("officer1"), signing=signing(today)),
                )
                while (await handle.query(LoanWorkflow.status)).stage is not Stage.DISBURSED:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)  # let the disbursement SMS complete
                history = await handle.fetch_history()
        engine.dispose()
    await env.shutdown()
    path = HISTORIES / "origination_happy_path.json"
    path.write_text(history.to_json(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"recorded {asyncio.run(record_origination_happy_path())}")
