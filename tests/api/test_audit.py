"""The audit trail (H-2): every human step and automatic effect, exported and verified.

The tables are checked against the workflows' own update definitions; recorded and made-up
histories are read without a server; a whole loan, from application to closure, is
exported over HTTP as CSV and JSON.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import types
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter

from api.schemas import AuditEvent
from api.services import audit
from settings import Settings
from tests.api.conftest import (
    POLL_INTERVAL,
    POLL_TRIES,
    LoanApi,
    approval_body,
    china_today,
    signing_body,
)
from tests.samples import application_data
from workflows.loan import LoanWorkflow
from workflows.servicing import LoanServicingWorkflow

HISTORIES = Path(__file__).parent.parent / "histories"
WORKFLOWS = (LoanWorkflow, LoanServicingWorkflow)


# --- the table of human steps ------------------------------------------------------------


def _updates() -> dict[tuple[str, str], type[BaseModel]]:
    """Every update of the loan's workflows with its input model, from their definitions."""
    out: dict[tuple[str, str], type[BaseModel]] = {}
    for cls in WORKFLOWS:
        definition = workflow._Definition.must_from_class(cls)
        workflow_type = definition.name
        assert workflow_type is not None
        for name, update in definition.updates.items():
            model = update.arg_types[0] if update.arg_types else None
            assert name is not None and isinstance(model, type), (workflow_type, name)
            assert issubclass(model, BaseModel), (workflow_type, name)
            out[(workflow_type, name)] = model
    return out


def _model_of(annotation: Any) -> type[BaseModel] | None:
    candidates = (
        [annotation, *get_args(annotation)]
        if get_origin(annotation)
        in (
            Union,
            types.UnionType,
        )
        else [annotation]
    )
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _resolves(model: type[BaseModel], path: str) -> bool:
    current: type[BaseModel] | None = model
    for key in path.split("."):
        if current is None or key not in current.model_fields:
            return False
        current = _model_of(current.model_fields[key].annotation)
    return True


def test_every_update_of_the_loan_workflows_has_its_line_in_the_trail() -> None:
    """A new update without a line in ``audit.STEPS`` fails here (H-2), and so does a line
    left behind by an update that is gone."""
    updates = _updates()
    assert len(updates) >= 26
    missing = sorted(set(updates) - set(audit.STEPS))
    assert missing == [], f"updates without an audit summary: {missing}"
    stale = sorted(set(audit.STEPS) - set(updates))
    assert stale == [], f"audit summaries of no update: {stale}"


@pytest.mark.parametrize("key", sorted(audit.STEPS), ids=lambda k: f"{k[0]}.{k[1]}")
def test_each_line_reads_fields_its_step_has(key: tuple[str, str]) -> None:
    model = _updates()[key]
    step = audit.STEPS[key]
    assert _resolves(model, "actor.username") and _resolves(model, "actor.role")
    paths = [entry.rpartition("=")[2] for entry in step.details]
    if isinstance(step.decision, audit.Read):
        paths.append(step.decision.path)
    if step.comment:
        paths.append(step.comment)
    assert [p for p in paths if not _resolves(model, p)] == []
    assert step.rule


# --- histories read without a server ------------------------------------------------------


def _converter() -> DataConverter:
    return Settings(environment="test").history_data_converter()


async def _runs(*runs: tuple[str, list[HistoryEvent]]) -> AsyncIterator[tuple[str, Any]]:
    for run in runs:
        yield run


def _recorded(stem: str) -> tuple[str, list[HistoryEvent]]:
    history = WorkflowHistory.from_json(stem, (HISTORIES / f"{stem}.json").read_text("utf-8"))
    return stem, list(history.events)


def _brief(events: list[AuditEvent], kind: str) -> list[tuple[str, str | None]]:
    return [(e.step, e.decision) for e in events if e.kind == kind]


async def test_a_recorded_loan_reads_as_its_steps_and_effects_in_order() -> None:
    """The lean histories: origination into servicing, a check, counter payments, a due
    date debited, one missed (notices to borrower and guarantor, 关注), then repaid (正常).
    The class is written by a local activity, whose input the history does not keep: the
    trail replays the run to read it."""
    events = await audit.read_trail(
        _converter(),
        "loan-REC",
        _runs(_recorded("lean_run_01"), _recorded("lean_run_02")),
        lambda run_id: f"http://ui/{run_id}",
    )
    assert [(e.run_id, e.event_id) for e in events] == sorted(
        ((e.run_id, e.event_id) for e in events), key=lambda k: (k[0] != "lean_run_01", k[1])
    )
    times = [e.time for e in events]
    assert times == sorted(times)
    assert {e.policy_version for e in events} == {"2026.1"}
    assert {e.history_url for e in events} == {"http://ui/lean_run_01", "http://ui/lean_run_02"}

    assert [(e.step, e.actor, e.rule) for e in events if e.kind == "human_step"] == [
        ("submit_investigation", "officer1", "I-1"),
        ("submit_investigation", "officer2", "I-1"),
        ("review_loan", "reviewer1", "A-2"),
        ("decide_loan", "approver1", "A-3"),
        ("sign_contract", "officer1", "C-1"),
        ("report_inspection", "officer1", "K-5"),
        ("record_payment", "teller1", "P-2"),
        ("record_payment", "teller1", "P-2"),
        ("record_payment", "teller1", "P-2"),
    ]
    review = next(e for e in events if e.step == "review_loan")
    assert (review.decision, review.comment, review.role) == (
        "forward",
        "材料齐全，同意上报",
        "reviewer",
    )

    automatic = [e for e in events if e.kind == "automatic"]
    assert [(e.step, e.decision) for e in automatic if e.step == "loan_classified"] == [
        ("loan_classified", "unclassified → normal"),
        ("loan_classified", "normal → special_mention"),
        ("loan_classified", "special_mention → normal"),
    ]
    downgrade = next(e for e in automatic if e.decision == "normal → special_mention")
    assert downgrade.details == {
        "from": "normal",
        "to": "special_mention",
        "bucket": "M1",
        "days_past_due": 1,
    }
    reminders = [e for e in automatic if e.step == "send_sms" and e.rule == "P-3"]
    assert [(e.decision, e.details["installment"]) for e in reminders] == [
        ("SMS interest_reminder", 1),
        ("SMS interest_reminder", 2),
    ]
    debits = [(e.decision, e.details["amount"]) for e in automatic if e.step == "post_repayment"]
    assert debits == [
        ("installment 1 debited", "180.00"),
        ("arrears debited", "0.01"),
        ("arrears debited", "186.11"),
    ]
    notices = [e for e in automatic if e.step == "issue_notice"]
    assert [(e.rule, e.details["addressee"], e.details["notice_key"]) for e in notices] == [
        ("D-2", "张大山", "REC70A55CA2:notice:1"),
        ("D-2", "李四", "REC70A55CA2:notice:1"),
    ]
    assert [e.details["amount"] for e in automatic if e.step == "post_disbursement"] == ["30000"]
    text = json.dumps([e.model_dump(mode="json") for e in events], ensure_ascii=False)
    assert "13812345678" not in text and "6228480012345678" not in text  # H-3


def _event(event_id: int, kind: EventType.ValueType, at: datetime) -> HistoryEvent:
    event = HistoryEvent(event_id=event_id, event_type=kind)
    event.event_time.FromDatetime(at)
    return event


class _Made:
    """A made-up servicing run, event by event, with encoded payloads."""

    def __init__(self, converter: DataConverter) -> None:
        self.converter = converter
        self.events: list[HistoryEvent] = []
        self.at = datetime(2027, 3, 1, 1, tzinfo=UTC)

    def _next(self, kind: EventType.ValueType) -> HistoryEvent:
        self.at += timedelta(minutes=1)
        event = _event(len(self.events) + 1, kind, self.at)
        self.events.append(event)
        return event

    async def _encode(self, value: Any) -> Any:
        return await self.converter.encode([value])

    async def start(self, workflow_type: str) -> None:
        event = self._next(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
        started = event.workflow_execution_started_event_attributes
        started.workflow_type.name = workflow_type
        started.input.payloads.extend(await self._encode({"policy": {"version": "2026.1"}}))

    async def update(self, update_id: str, name: str, arg: dict[str, Any]) -> None:
        event = self._next(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        request.meta.update_id = update_id
        request.input.name = name
        request.input.args.payloads.extend(await self._encode(arg))

    def update_done(self, update_id: str, refusal: str | None = None) -> None:
        event = self._next(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)
        completed = event.workflow_execution_update_completed_event_attributes
        completed.meta.update_id = update_id
        if refusal is None:
            completed.outcome.success.SetInParent()
        else:
            completed.outcome.failure.message = refusal

    async def activity(
        self, name: str, inp: dict[str, Any], result: Any = None, failure: str | None = None
    ) -> None:
        scheduled = self._next(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        attributes = scheduled.activity_task_scheduled_event_attributes
        attributes.activity_type.name = name
        attributes.input.payloads.extend(await self._encode(inp))
        if failure is not None:
            failed = self._next(EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED)
            failed.activity_task_failed_event_attributes.scheduled_event_id = scheduled.event_id
            failed.activity_task_failed_event_attributes.failure.message = failure
            return
        done = self._next(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
        done.activity_task_completed_event_attributes.scheduled_event_id = scheduled.event_id
        if result is not None:
            done.activity_task_completed_event_attributes.result.payloads.extend(
                await self._encode(result)
            )


def _actor(username: str, role: str) -> dict[str, Any]:
    return {"username": username, "name": "某", "role": role, "branch": "CB01"}


async def test_refusals_failures_numbers_credit_events_write_off_and_closure() -> None:
    """A step accepted and refused when applied shows accepted=false with the refusal; an
    effect that failed shows accepted=false; a notice's official number comes from the
    activity's result when it carries one; the class change read from a recorded
    projection; F-2, Z-1 and P-7 effects; phone numbers typed or failed are masked."""
    made = _Made(_converter())
    await made.start(audit.SERVICING)
    await made.activity("project_loan", {"loan_class": "normal", "bucket": "current"})
    await made.update(
        "u1",
        "classify_loan",
        {
            "actor": _actor("reviewer1", "reviewer"),
            "loan_class": "loss",
            "reason": "借款人13812345678失联",
        },
    )
    await made.activity("project_loan", {"loan_class": "loss", "bucket": "current"})
    made.update_done("u1")
    await made.activity(
        "record_credit_event",
        {"event": "doubtful_or_loss"},
        {"score": 25, "no_upgrade_until": None},
    )
    await made.update(
        "u2",
        "raise_warning",
        {"actor": _actor("officer1", "loan_officer"), "signal": "lawsuit", "note": "涉诉"},
    )
    made.update_done("u2", refusal="loan is written_off; raise_warning is refused")
    await made.update(
        "u3",
        "decide_write_off",
        {"actor": _actor("pref_approver", "approver"), "approve": True, "note": "同意核销"},
    )
    await made.activity("post_write_off", {"principal": "30000.00", "value_date": "2027-03-01"})
    made.update_done("u3")
    notice = {
        "template": "overdue_notice",
        "recipient": "张大山",
        "context": {
            "notice_number": "LN1:notice:2",
            "total": "31000.00",
            "issued_on": "2027-03-01",
        },
    }
    await made.activity(
        "issue_notice", notice, {"notification_id": 7, "number": "CB01-2027-000003"}
    )
    await made.activity("issue_notice", notice, {"notification_id": 8, "already_sent": False})
    await made.activity(
        "send_sms",
        {"template": "overdue_reminder", "phone": "13812345678", "context": {"arrears": "1.00"}},
        failure="template overdue_reminder: bad number 13812345678",
    )
    await made.activity("release_household", {"household_id": "HH-1"})

    events = await audit.read_trail(_converter(), "loan-LN1", _runs(("run", made.events)))

    steps = {e.step: e for e in events if e.kind == "human_step"}
    assert steps["classify_loan"].accepted and steps["classify_loan"].decision == "loss"
    assert steps["classify_loan"].comment == "借款人138****5678失联"
    assert steps["raise_warning"].accepted is False
    assert (
        steps["raise_warning"].details["refusal"] == "loan is written_off; raise_warning is refused"
    )
    assert (steps["decide_write_off"].decision, steps["decide_write_off"].rule) == (
        "approved",
        "Z-1",
    )

    automatic = [(e.step, e.rule, e.decision, e.accepted) for e in events if e.kind == "automatic"]
    assert automatic == [
        ("loan_classified", "F-1", "unclassified → normal", True),
        ("loan_classified", "F-1", "normal → loss", True),
        ("record_credit_event", "F-2", "credit event: doubtful_or_loss", True),
        ("post_write_off", "Z-1", "written off (账销案存)", True),
        ("issue_notice", "D-2", "notice issued: overdue_notice", True),
        ("issue_notice", "D-2", "notice issued: overdue_notice", True),
        ("send_sms", None, "SMS overdue_reminder", False),
        (
            "release_household",
            "P-7",
            "repaid in full: closed, guarantees and household released",
            True,
        ),
    ]
    by_step = [e for e in events if e.kind == "automatic"]
    assert by_step[2].details == {"score": 25}
    assert by_step[3].details["principal"] == "30000.00"
    assert by_step[4].details["number"] == "CB01-2027-000003"
    assert "number" not in by_step[5].details  # no number in the result: none made up
    assert by_step[6].comment == "template overdue_reminder: bad number 138****5678"
    assert all(e.history_url is None for e in events)  # no UI address given, no link


# --- a whole loan over HTTP --------------------------------------------------------------

HUMAN_STEPS = [
    ("apply_for_loan", "officer1", "loan_officer"),
    ("submit_investigation", "officer1", "loan_officer"),
    ("submit_investigation", "officer2", "loan_officer"),
    ("review_loan", "reviewer1", "reviewer"),
    ("decide_loan", "approver1", "approver"),
    ("sign_contract", "officer1", "loan_officer"),
    ("record_payment", "teller1", "teller"),
    ("request_prepayment", "officer1", "loan_officer"),
    ("decide_prepayment", "head1", "branch_head"),
    ("submit_final_evaluation", "officer1", "loan_officer"),
]


async def _closed_trail(loan_api: LoanApi, loan_id: str) -> list[dict[str, Any]]:
    """The JSON trail, once the workflow has ended (its outcome is the last entry)."""
    for _ in range(POLL_TRIES):
        response = await loan_api.get("auditor1", f"/loans/{loan_id}/audit")
        assert response.status_code == 200, response.text
        trail: list[dict[str, Any]] = response.json()
        if trail and trail[-1]["kind"] == "outcome":
            return trail
        await asyncio.sleep(POLL_INTERVAL)
    raise AssertionError(f"loan {loan_id}'s workflow never ended")


async def test_a_loan_from_application_to_closure_exports_its_whole_trail(
    loan_api: LoanApi, api_settings: Settings
) -> None:
    data = application_data(china_today())
    id_number, phone = data["applicant"]["id_number"], data["applicant"]["phone"]
    response = await loan_api.post("officer1", "/loans", data)
    assert response.status_code == 201, response.text
    loan_id = response.json()["loan_id"]
    await loan_api.investigate(loan_id)
    # What staff type is masked in the trail (H-3), however it was typed.
    review = {"outcome": "forward", "comment": f"身份证{id_number}与户口簿一致，同意上报"}
    await loan_api.step("reviewer1", loan_id, "review", review)
    await loan_api.step("approver1", loan_id, "decision", approval_body())
    await loan_api.step("officer1", loan_id, "contract", signing_body(china_today()))
    await loan_api.wait_for_stage(loan_id, "repaying")

    # P-2: cash at the counter; P-4: prepaid in full with the head's consent; P-7: closed,
    # then the officer's final evaluation ends the workflow.
    payment = {"amount": "31000.00", "reference": "GM-0001"}
    await loan_api.step("teller1", loan_id, "payments", payment)
    await loan_api.step("officer1", loan_id, "prepayments", {"amount": "30000.00"})
    consent = {"consent": True, "note": "同意提前结清"}
    await loan_api.step("head1", loan_id, "prepayment-decision", consent)
    await loan_api.wait_for_stage(loan_id, "closed")
    evaluation = {"evaluation": f"按期结清，信用良好；联系电话{phone}"}
    await loan_api.step("officer1", loan_id, "final-evaluation", evaluation)
    trail = await _closed_trail(loan_api, loan_id)

    # The CSV and the JSON download carry the same entries as the trail.
    exported = await loan_api.get("auditor1", f"/loans/{loan_id}/audit.csv")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    disposition = f'attachment; filename="audit-{loan_id}.csv"'
    assert exported.headers["content-disposition"] == disposition
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert list(rows[0]) == list(audit.CSV_COLUMNS)
    downloaded = await loan_api.get("auditor1", f"/loans/{loan_id}/audit.json")
    assert downloaded.status_code == 200, downloaded.text
    assert downloaded.headers["content-type"].startswith("application/json")
    disposition = f'attachment; filename="audit-{loan_id}.json"'
    assert downloaded.headers["content-disposition"] == disposition
    entries = json.loads(downloaded.content)
    assert entries == trail
    assert [(r["run_id"], int(r["event_id"]), r["step"]) for r in rows] == [
        (e["run_id"], e["event_id"], e["step"]) for e in entries
    ]
    assert rows[0]["details"].startswith("{")

    # Each human step with its actor and role, in order.
    human = [e for e in entries if e["kind"] in ("application", "human_step")]
    assert [(e["step"], e["actor"], e["role"]) for e in human] == HUMAN_STEPS
    assert all(e["accepted"] for e in human)
    by_step = {e["step"]: e for e in human}
    assert (by_step["decide_loan"]["decision"], by_step["decide_loan"]["rule"]) == (
        "approve",
        "A-3",
    )
    assert by_step["decide_loan"]["details"]["amount"] == "30000"
    assert by_step["review_loan"]["comment"].startswith("身份证4101**********")
    assert by_step["record_payment"]["details"] == {"amount": "31000.00"}
    assert by_step["record_payment"]["comment"] == "GM-0001"
    assert by_step["decide_prepayment"]["decision"] == "consented"
    assert by_step["submit_final_evaluation"]["rule"] == "P-7"

    # The automatic effects in time order, after the steps that caused them.
    automatic = [(e["step"], e["decision"]) for e in entries if e["kind"] == "automatic"]
    assert automatic == [
        ("fetch_credit_report", "credit report pulled"),
        ("send_sms", "SMS application_received"),
        ("send_sms", "SMS loan_approved"),
        ("post_disbursement", "disbursed to the settlement account"),
        ("store_schedule", "repayment schedule fixed"),
        ("send_sms", "SMS loan_disbursed"),
        ("loan_classified", "unclassified → normal"),
        ("post_deposit", "paid into the settlement account"),
        ("send_sms", "SMS payment_received"),
        ("post_repayment", "prepayment debited"),
        ("release_household", "repaid in full: closed, guarantees and household released"),
        ("issue_notice", "notice issued: settlement_certificate"),
        ("send_sms", "SMS loan_settled"),
    ]
    assert all(e["accepted"] for e in entries)  # no step refused later, no effect failed
    debit = next(e for e in entries if e["step"] == "post_repayment")
    assert (debit["rule"], debit["details"]["amount"]) == ("P-4", "30000.00")
    assert entries[-1]["kind"] == "outcome" and entries[-1]["decision"] == "closed"
    times = [datetime.fromisoformat(e["time"]) for e in entries]
    assert times == sorted(times)
    steps = [e["step"] for e in entries]
    assert steps.index("decide_prepayment") < steps.index("post_repayment")
    assert steps.index("sign_contract") < steps.index("post_disbursement")

    # Every entry: its policy version and a link to its run's raw history in the Web UI.
    assert {e["policy_version"] for e in entries} == {"2026.1"}
    ui = f"{api_settings.temporal_ui_url}/namespaces/{api_settings.temporal_namespace}"
    runs = list(dict.fromkeys(e["run_id"] for e in entries))
    assert len(runs) >= 2  # origination, then post-loan management (continue-as-new)
    for entry in entries:
        assert entry["history_url"] == (f"{ui}/workflows/loan-{loan_id}/{entry['run_id']}/history")

    # H-3: no full ID or phone number in either export.
    for text in (exported.text, downloaded.text):
        assert id_number not in text and phone not in text
    assert "138****5678" in by_step["submit_final_evaluation"]["comment"]


async def test_the_trail_replays_on_the_current_code_for_overseers_only(
    loan_api: LoanApi,
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.to_repaying(loan_id)

    verified = await loan_api.post("auditor1", f"/loans/{loan_id}/audit/verify")
    assert verified.status_code == 200, verified.text
    runs = verified.json()
    assert [r["workflow_type"] for r in runs][:2] == ["LoanWorkflow", "LoanServicingWorkflow"]
    assert all(r["reproduces"] and r["problem"] is None for r in runs)
    assert all(f"/workflows/loan-{loan_id}/" in r["history_url"] for r in runs)

    # Verification is for those who oversee; loan officers may not read the trail (I-1).
    officer = await loan_api.post("officer1", f"/loans/{loan_id}/audit/verify")
    assert officer.status_code == 403
    for path in ("audit", "audit.csv", "audit.json"):
        response = await loan_api.get("officer1", f"/loans/{loan_id}/{path}")
        assert response.status_code == 403, path
    unknown = await loan_api.get("auditor1", "/loans/LN20260101DEADBEEF/audit.json")
    assert unknown.status_code == 404
