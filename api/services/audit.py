"""The audit trail (H-2), read from the loan's workflow history: the evidence nobody edits.

Every accepted human step carries its actor (from the token), its decision and its
comment; the policy version comes from the workflow's start. Refused steps never
reach the history: a validator's refusal changes nothing, so there is nothing to audit.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from api.errors import ApiError
from api.schemas import AuditEvent
from domain.ids import mask_pii_deep
from workflows.messages import workflow_id_for

# Outside effects worth showing next to the human steps.
AUTOMATIC_STEPS = {
    "fetch_credit_report": "credit report pulled (I-4)",
    "post_disbursement": "disbursement posted to the ledger (C-3)",
    "store_schedule": "repayment schedule fixed (C-4)",
    "send_sms": "SMS to the borrower",
    "notify_staff": "staff reminded (A-4)",
    "post_deposit": "payment into the settlement account (P-2)",
    "post_repayment": "repayment debited and allocated (P-2, P-6)",
    "record_credit_event": "household credit score lowered (F-2)",
    "issue_notice": "printed notice issued",
    "release_household": "household released for new applications (E-7)",
}


def _step_summary(name: str, arg: dict[str, Any]) -> tuple[str | None, str | None, dict[str, Any]]:
    """(decision, comment, details) of one human step's input."""
    if name == "submit_investigation":
        report = arg["report"]
        details = {k: report.get(k) for k in ("amount", "term_months", "annual_rate")}
        return report["recommendation"], report.get("comment") or None, details
    if name in ("review_loan", "confirm_as_branch_head"):
        return arg["review"]["outcome"], arg["review"]["comment"], {}
    if name == "decide_loan":
        decision = arg["decision"]
        details = {
            k: decision.get(k) for k in ("amount", "term_months", "annual_rate", "conditions")
        }
        return decision["outcome"], decision.get("reason") or None, details
    if name == "sign_contract":
        signing = arg["signing"]
        return "signed", signing["contract_number"], {"signed_on": signing["signed_on"]}
    if name == "supply_materials":
        return "materials supplied", ", ".join(arg["materials"]), {}
    if name == "withdraw_application":
        return "withdrawn", arg["reason"], {}
    if name == "record_payment":
        return "paid", arg.get("reference") or None, {"amount": arg["amount"]}
    if name == "submit_final_evaluation":
        return "evaluated", arg["evaluation"], {}
    return None, None, {}


def _time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


async def loan_runs(client: Client, loan_id: str) -> AsyncIterator[tuple[str, list[HistoryEvent]]]:
    """Each run of the loan's workflow with its events, first to latest (continue-as-new)."""
    workflow_id = workflow_id_for(loan_id)
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:  # retention has removed the history
            raise ApiError(404, f"no workflow history for loan {loan_id}") from None
        raise
    run_id = description.raw_description.workflow_execution_info.first_run_id or description.run_id
    while run_id:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        events = [e async for e in handle.fetch_history_events()]
        yield run_id, events
        last = events[-1] if events else None
        continued = last is not None and (
            last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        )
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if continued and last is not None
            else ""
        )


CSV_COLUMNS = (
    "run_id",
    "event_id",
    "time",
    "kind",
    "step",
    "actor",
    "role",
    "decision",
    "comment",
    "policy_version",
    "accepted",
    "details",
)


def as_csv(events: list[AuditEvent]) -> str:
    """The trail as CSV (UTF-8, one row per event, details as JSON), for spreadsheets."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for event in events:
        row = event.model_dump(mode="json")
        row["details"] = json.dumps(row["details"], ensure_ascii=False, sort_keys=True)
        writer.writerow({column: row[column] for column in CSV_COLUMNS})
    return out.getvalue()


class RunVerification(BaseModel):
    """One run of the loan's workflow replayed against the code deployed now."""

    run_id: str
    workflow_type: str
    events: int
    reproduces: bool
    problem: str | None = None
    history_url: str


async def verify(client: Client, loan_id: str, ui_url: str) -> list[RunVerification]:
    """H-2: replay every run of the loan's history with the current workflow code; a run
    that no longer reproduces means the code changed under a running loan without
    ``workflow.patched``. Nothing is changed: replaying runs no activity."""
    from workflows.loan import LoanWorkflow
    from workflows.servicing import LoanServicingWorkflow

    replayer = Replayer(
        workflows=[LoanWorkflow, LoanServicingWorkflow], data_converter=client.data_converter
    )
    workflow_id = workflow_id_for(loan_id)
    out = []
    async for run_id, events in loan_runs(client, loan_id):
        history = WorkflowHistory(workflow_id, events)
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        failure = result.replay_failure
        out.append(
            RunVerification(
                run_id=run_id,
                workflow_type=events[
                    0
                ].workflow_execution_started_event_attributes.workflow_type.name,
                events=len(events),
                reproduces=failure is None,
                problem=None if failure is None else str(failure),
                history_url=history_url(ui_url, client.namespace, workflow_id, run_id),
            )
        )
    return out


def history_url(ui_url: str, namespace: str, workflow_id: str, run_id: str) -> str:
    """Where the Temporal Web UI shows a run's raw history."""
    return f"{ui_url}/namespaces/{namespace}/workflows/{workflow_id}/{run_id}/history"


async def audit_trail(client: Client, loan_id: str) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    async for run_id, history in loan_runs(client, loan_id):
        events += await _run_trail(client, run_id, history)
    # Comments, reasons and conditions are what staff typed: mask what they typed in (H-3).
    return [AuditEvent.model_validate(mask_pii_deep(e.model_dump(mode="json"))) for e in events]


async def _run_trail(client: Client, run_id: str, history: list[HistoryEvent]) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    policy_version = ""
    updates: dict[str, AuditEvent] = {}
    activities: dict[int, str] = {}
    for event in history:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            started = event.workflow_execution_started_event_attributes
            (start,) = await client.data_converter.decode(started.input.payloads)
            policy_version = start["policy"]["version"]
            if started.workflow_type.name != "LoanWorkflow":
                continue  # a servicing run: the application was recorded by the first run
            events.append(
                AuditEvent(
                    run_id=run_id,
                    event_id=event.event_id,
                    time=_time(event),
                    kind="application",
                    step="apply_for_loan",
                    actor=start["officer"]["username"],
                    role=start["officer"]["role"],
                    decision="received",
                    policy_version=policy_version,
                    details={
                        "amount": start["application"]["amount"],
                        "term_months": start["application"]["term_months"],
                        "purpose": start["application"]["purpose"],
                    },
                )
            )
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            (arg,) = await client.data_converter.decode(request.input.args.payloads)
            decision, comment, details = _step_summary(request.input.name, arg)
            entry = AuditEvent(
                run_id=run_id,
                event_id=event.event_id,
                time=_time(event),
                kind="human_step",
                step=request.input.name,
                actor=arg["actor"]["username"],
                role=arg["actor"]["role"],
                decision=decision,
                comment=comment,
                policy_version=policy_version,
                details=details,
            )
            updates[request.meta.update_id] = entry
            events.append(entry)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            completed = event.workflow_execution_update_completed_event_attributes
            accepted = updates.get(completed.meta.update_id)
            if accepted is not None and completed.outcome.HasField("failure"):
                accepted.accepted = False
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            activities[event.event_id] = name
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
            name = activities.get(scheduled, "")
            if name in AUTOMATIC_STEPS:
                events.append(
                    AuditEvent(
                        run_id=run_id,
                        event_id=event.event_id,
                        time=_time(event),
                        kind="automatic",
                        step=name,
                        decision=AUTOMATIC_STEPS[name],
                        policy_version=policy_version,
                    )
                )
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            finished = event.workflow_execution_completed_event_attributes
            (outcome,) = await client.data_converter.decode(finished.result.payloads)
            events.append(
                AuditEvent(
                    run_id=run_id,
                    event_id=event.event_id,
                    time=_time(event),
                    kind="outcome",
                    step="loan_closed",
                    decision=outcome["stage"],
                    comment="; ".join(r["message"] for r in outcome["reasons"]) or None,
                    policy_version=policy_version,
                )
            )
    return events
