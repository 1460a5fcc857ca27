"""Nothing reaches a loan without the deployment's payload key (H-3, issue 9).

Someone who can reach Temporal's port but has no payload key (the ``temporal`` CLI, the Web
UI, a script) sends plaintext. The workers refuse it: a step is rejected before its
validator runs and a workflow started with it fails at once, and nothing else happens; the
loan's own workflow tasks keep completing, so the next step through the API works at once.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from adapters.codec import PLAINTEXT_REFUSED
from settings import Settings, bundled_binary
from store.models import LoanRecord, Notification
from tests.api.conftest import LoanApi, approval_body, china_today
from tests.samples import application_data
from workflows.messages import workflow_id_for

MALLORY = {
    "username": "mallory",
    "name": "Mallory",
    "role": "approver",
    "branch": "CB01",
    "tier": "county",
    "approval_limit": "1000000",
}


async def temporal_cli(env: WorkflowEnvironment, *args: str) -> tuple[int, str]:
    """Runs the bundled ``temporal`` CLI against the test's dev server, with no payload key."""
    process = await asyncio.create_subprocess_exec(
        str(bundled_binary("temporal")),
        *args,
        "--address",
        env.client.service_client.config.target_host,
        "--namespace",
        env.client.namespace,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def failed_workflow_tasks(env: WorkflowEnvironment, workflow_id: str) -> int:
    events = [e async for e in env.client.get_workflow_handle(workflow_id).fetch_history_events()]
    return sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for e in events)


async def test_a_forged_approval_sent_straight_to_temporal_is_refused(
    loan_api: LoanApi, temporal_dev_env: WorkflowEnvironment
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.to_approval(loan_id)
    workflow_id = workflow_id_for(loan_id)
    forged = {"actor": MALLORY, "decision": approval_body()}

    code, output = await temporal_cli(
        temporal_dev_env,
        "workflow",
        "update",
        "execute",
        "-w",
        workflow_id,
        "--name",
        "decide_loan",
        "--input",
        json.dumps(forged),
    )
    assert code != 0, output
    assert "H-3" in output and "not encrypted with this deployment's key" in output

    # Nothing changed, nobody named mallory is on file, no task failed or is retried.
    detail = (await loan_api.get("officer1", f"/loans/{loan_id}")).json()
    assert detail["workflow"]["stage"] == "approval"
    assert all(s["actor"] != "mallory" for s in detail["workflow"]["steps"])
    assert await failed_workflow_tasks(temporal_dev_env, workflow_id) == 0

    # The next step through the API works at once, as the approver signed in.
    approved = await loan_api.step("approver1", loan_id, "decision", approval_body())
    assert approved["stage"] == "signing"
    assert [s["actor"] for s in approved["steps"] if s["step"] == "decision"] == ["approver1"]
    assert await failed_workflow_tasks(temporal_dev_env, workflow_id) == 0


async def test_a_loan_started_with_a_plaintext_application_fails_at_once(
    loan_api: LoanApi, temporal_dev_env: WorkflowEnvironment, api_settings: Settings, app: FastAPI
) -> None:
    loan_id = "LNFORGED" + china_today().strftime("%Y%m%d")
    workflow_id = workflow_id_for(loan_id)
    start: dict[str, Any] = {
        "loan_id": loan_id,
        "application": application_data(china_today()),
        "branch_code": "CB01",
        "prefecture_code": "PF01",
        "officer": {**MALLORY, "role": "loan_officer", "approval_limit": None},
        "applied_at": "2026-01-01T00:00:00Z",
        "policy": {},
    }
    code, output = await temporal_cli(
        temporal_dev_env,
        "workflow",
        "start",
        "--type",
        "LoanWorkflow",
        "--task-queue",
        api_settings.task_queue,
        "-w",
        workflow_id,
        "--input",
        json.dumps(start),
    )
    assert code == 0, output  # Temporal accepts the start; the workers refuse its payload

    handle = temporal_dev_env.client.get_workflow_handle(workflow_id)
    try:
        await asyncio.wait_for(handle.result(), timeout=30)
        raise AssertionError("a workflow started with plaintext ran")
    except WorkflowFailureError as failed:
        assert PLAINTEXT_REFUSED in str(failed.cause)
    assert await failed_workflow_tasks(temporal_dev_env, workflow_id) == 0
    events = [e async for e in handle.fetch_history_events()]
    assert not any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in events)
    with app.state.sessions() as session:
        assert session.get(LoanRecord, loan_id) is None
        assert session.exec(select(Notification).where(Notification.loan_id == loan_id)).all() == []
