"""The audit trail (H-2), read from the loan's workflow history: the evidence nobody edits.

Every accepted human step carries its actor (from the token), its decision and its
comment; the policy version comes from the start of the run it belongs to. Refused steps
never reach the history: a validator's refusal changes nothing, so there is nothing to
audit. The automatic effects (SMS, postings, notices, credit events, write-off, closure)
are read from the activities' recorded inputs and results; the F-1 class from the register
rows the workflow writes (replayed where a local activity wrote them, as its input is not
recorded). Each entry links to its run's raw history in the Temporal Web UI.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from pydantic import BaseModel
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from temporalio.workflow import ActivityHandle

from adapters.codec import history_converter
from api.errors import ApiError
from api.schemas import AuditEvent
from domain.ids import mask_pii_deep
from domain.money import to_cents
from workflows.loan import LoanWorkflow
from workflows.messages import workflow_id_for
from workflows.servicing import LoanServicingWorkflow

LOAN = "LoanWorkflow"
SERVICING = "LoanServicingWorkflow"

# ---------------------------------------------------------------------- human steps


class Read(NamedTuple):
    """A decision read from a field of the step's input; a yes/no field reads as words."""

    path: str
    yes: str = "yes"
    no: str = "no"


@dataclass(frozen=True)
class Step:
    """How one human step (an update of the loan's workflow) reads in the trail.

    ``decision`` is a fixed word or a ``Read`` of the input; ``comment`` and ``details``
    are field paths of the input (``"review.comment"``); a detail may be renamed
    (``"successor=successor.username"``)."""

    rule: str
    decision: str | Read
    comment: str | None = None
    details: tuple[str, ...] = ()
    about: str | None = None  # what the step decides when not the loan itself


_EXTENSION = "extension"
_OUTCOME = Read("review.outcome")

# Every update of both workflows, by (workflow type, update name); tests/api/test_audit.py
# fails when an update has no line here.
STEPS: dict[tuple[str, str], Step] = {
    (LOAN, "supply_materials"): Step("E-13", "materials supplied", "materials"),
    (LOAN, "submit_investigation"): Step(
        "I-1",
        Read("report.recommendation"),
        "report.comment",
        ("report.amount", "report.term_months", "report.annual_rate"),
    ),
    (LOAN, "review_loan"): Step("A-2", _OUTCOME, "review.comment"),
    (LOAN, "confirm_as_branch_head"): Step("A-2", _OUTCOME, "review.comment"),
    (LOAN, "decide_loan"): Step(
        "A-3",
        Read("decision.outcome"),
        "decision.reason",
        (
            "decision.amount",
            "decision.term_months",
            "decision.annual_rate",
            "decision.repayment_method",
            "decision.conditions",
        ),
    ),
    (LOAN, "sign_contract"): Step(
        "C-1",
        "signed",
        "signing.contract_number",
        (
            "signing.signed_on",
            "signing.guarantee_contracts_signed",
            "signing.collateral_registered",
            "signing.conditions_met",
        ),
    ),
    (LOAN, "withdraw_application"): Step("A-3", "withdrawn", "reason"),
    (SERVICING, "record_payment"): Step("P-2", "paid at the counter", "reference", ("amount",)),
    (SERVICING, "record_collection_action"): Step("D-1", Read("actions"), "outcome", ("task_key",)),
    (SERVICING, "record_notice_receipt"): Step(
        "D-3", "receipt returned", None, ("notice_key", "received_on")
    ),
    (SERVICING, "report_inspection"): Step(
        "K-5",
        Read("findings.purpose_kept", yes="purpose kept", no="purpose not kept"),
        "findings.notes",
        (
            "task_key",
            "findings.business_normal",
            "findings.contact_details_current",
            "findings.signals",
        ),
    ),
    (SERVICING, "raise_warning"): Step("W-1", Read("signal"), "note"),
    (SERVICING, "decide_warning"): Step("W-2", Read("measure"), "note", ("task_key",)),
    (SERVICING, "classify_loan"): Step("F-1", Read("loan_class"), "reason"),
    (SERVICING, "mark_wilful_default"): Step("D-5", "wilful defaulter", "reason"),
    (SERVICING, "request_prepayment"): Step("P-4", "prepayment requested", None, ("amount",)),
    (SERVICING, "decide_prepayment"): Step("P-4", Read("consent", "consented", "refused"), "note"),
    (SERVICING, "propose_write_off"): Step("Z-1", "write-off proposed", "reason"),
    (SERVICING, "decide_write_off"): Step("Z-1", Read("approve", "approved", "refused"), "note"),
    (SERVICING, "request_extension"): Step(
        "X-1", "extension requested", "reason", ("months", "guarantor_consent"), _EXTENSION
    ),
    (SERVICING, "review_loan"): Step("X-4", _OUTCOME, "review.comment", about=_EXTENSION),
    (SERVICING, "confirm_as_branch_head"): Step(
        "X-4", _OUTCOME, "review.comment", about=_EXTENSION
    ),
    (SERVICING, "decide_loan"): Step(
        "X-4",
        Read("decision.outcome"),
        "decision.reason",
        (
            "decision.amount",
            "decision.term_months",
            "decision.annual_rate",
            "decision.repayment_method",
        ),
        _EXTENSION,
    ),
    (SERVICING, "sign_contract"): Step(
        "X-5", "signed", "signing.contract_number", ("signing.signed_on",), _EXTENSION
    ),
    (SERVICING, "hand_over"): Step(
        "H-1",
        "handed over",
        None,
        ("successor=successor.username", "leaving_officer_signed", "successor_signed"),
    ),
    (SERVICING, "submit_final_evaluation"): Step("P-7", "evaluated", "evaluation"),
}


def _read(data: Any, path: str) -> Any:
    for key in path.split("."):
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


def _text(value: Any) -> str | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _step_summary(
    workflow_type: str, name: str, arg: dict[str, Any]
) -> tuple[Step | None, str | None, str | None, dict[str, Any]]:
    """(the step's line, decision, comment, details) of one human step's input."""
    step = STEPS.get((workflow_type, name))
    if step is None:  # an update newer than this module: still listed, with its actor
        return None, None, None, {}
    if isinstance(step.decision, Read):
        value = _read(arg, step.decision.path)
        if isinstance(value, bool):
            value = step.decision.yes if value else step.decision.no
        decision = _text(value)
    else:
        decision = step.decision
    details: dict[str, Any] = {"about": step.about} if step.about else {}
    for entry in step.details:
        key, _, path = entry.rpartition("=")
        details[key or path.rsplit(".", 1)[-1]] = _read(arg, path)
    comment = _text(_read(arg, step.comment)) if step.comment else None
    return step, decision, comment, details


# ---------------------------------------------------------------------- automatic effects


class Effect(NamedTuple):
    """What a completed activity did, for the trail: (rule, decision, details)."""

    rule: str | None
    decision: str
    details: dict[str, Any]


def _money(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal("0")


def _allocation(allocation: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in allocation.items() if k != "unapplied" and _money(v) != 0}


def _sms(inp: dict[str, Any], _: Any, __: str) -> Effect:
    context = {
        k: v
        for k, v in (inp.get("context") or {}).items()
        if k not in ("name", "institution", "loan_id")
    }
    reminder = inp.get("template") in ("interest_reminder", "maturity_notice")
    return Effect("P-3" if reminder else None, f"SMS {inp.get('template')}", context)


def _notice(inp: dict[str, Any], result: Any, _: str) -> Effect:
    """A printed notice; its official number when the activity's result carries one."""
    context = inp.get("context") or {}
    template = inp.get("template")
    details: dict[str, Any] = {
        "addressee": inp.get("recipient"),
        "notice_key": context.get("notice_number"),
        "as_guarantor": context.get("as_guarantor"),
        "total": context.get("total"),
    }
    if isinstance(result, Mapping):
        number = result.get("number") or result.get("notice_number")
        if isinstance(number, str):
            details["number"] = number
    rule = {"overdue_notice": "D-2", "settlement_certificate": "P-7"}.get(str(template))
    return Effect(rule, f"notice issued: {template}", {k: v for k, v in details.items() if v})


def _debit(inp: dict[str, Any], _: Any, __: str) -> Effect:
    """P-2/P-6: a debit of the settlement account, and what it was for."""
    allocation = inp.get("allocation") or {}
    parts = _allocation(allocation)
    amount = to_cents(sum((_money(v) for v in parts.values()), Decimal("0")))
    purpose = str(inp.get("idempotency_key", "")).split("/", 1)[-1]
    if inp.get("memo") == "提前还款" or purpose.startswith("prepayment"):
        what, rule = "prepayment debited", "P-4"
    elif purpose.startswith("due-"):
        what, rule = f"installment {purpose.removeprefix('due-')} debited", "P-2"
    else:
        what, rule = "arrears debited", "P-6"
    details = {"amount": str(amount), "value_date": inp.get("value_date"), "allocation": parts}
    if _money(inp.get("fee")):
        details["fee"] = inp.get("fee")
    return Effect(rule, what, details)


def _release(inp: dict[str, Any], _: Any, workflow_type: str) -> Effect:
    if workflow_type == SERVICING:  # P-7: reached only once the loan is repaid in full
        return Effect("P-7", "repaid in full: closed, guarantees and household released", {})
    return Effect("E-7", "household released for new applications", {})


def _fixed(rule: str, decision: str, *fields: str) -> Callable[[dict[str, Any], Any, str], Effect]:
    def effect(inp: dict[str, Any], _: Any, __: str) -> Effect:
        return Effect(rule, decision, {f: inp.get(f) for f in fields})

    return effect


EFFECTS: dict[str, Callable[[dict[str, Any], Any, str], Effect]] = {
    "fetch_credit_report": _fixed("I-4", "credit report pulled"),
    "post_disbursement": _fixed("C-3", "disbursed to the settlement account", "amount"),
    "store_schedule": lambda inp, _, __: Effect(
        "C-4", "repayment schedule fixed", {"installments": len(inp.get("installments") or [])}
    ),
    "send_sms": _sms,
    "notify_staff": _fixed("A-4", "staff reminded", "template", "usernames"),
    "post_deposit": _fixed("P-2", "paid into the settlement account", "amount", "value_date"),
    "post_repayment": _debit,
    "post_recovery": _fixed("Z-1", "recovered after write-off", "amount", "value_date"),
    "post_write_off": _fixed("Z-1", "written off (账销案存)", "principal", "value_date"),
    "record_credit_event": lambda inp, result, _: Effect(
        "F-2",
        f"credit event: {inp.get('event')}",
        {"score": result.get("score") if isinstance(result, Mapping) else None},
    ),
    "blacklist_household": _fixed("D-5", "household blacklisted", "listed_by"),
    "issue_notice": _notice,
    "release_household": _release,
}
# The register row (台账) the workflow writes: read for the F-1 class only.
PROJECTION = "project_loan"


@dataclass
class _Standing:
    """The class (F-1) and bucket (D-4) the workflow wrote to the register at one event."""

    event_id: int
    time: datetime
    loan_class: str | None
    bucket: str | None
    days_past_due: int


# ---------------------------------------------------------------------- reading the history


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
    "rule",
    "actor",
    "role",
    "decision",
    "comment",
    "policy_version",
    "accepted",
    "details",
    "history_url",
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


def as_json(events: list[AuditEvent]) -> str:
    """The trail as a JSON array, the same entries as the CSV, for tools."""
    return json.dumps(
        [event.model_dump(mode="json") for event in events], ensure_ascii=False, indent=2
    )


class RunVerification(BaseModel):
    """One run of the loan's workflow replayed against the code deployed now."""

    run_id: str
    workflow_type: str
    events: int
    reproduces: bool
    problem: str | None = None
    history_url: str


def _replayer(interceptors: list[Interceptor], converter: DataConverter) -> Replayer:
    return Replayer(
        workflows=[LoanWorkflow, LoanServicingWorkflow],
        data_converter=converter,
        interceptors=interceptors,
    )


async def verify(client: Client, loan_id: str, ui_url: str) -> list[RunVerification]:
    """H-2: replay every run of the loan's history with the current workflow code; a run
    that no longer reproduces means the code changed under a running loan without
    ``workflow.patched``. Nothing is changed: replaying runs no activity."""
    replayer = _replayer([], history_converter(client.data_converter))
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


async def audit_trail(
    client: Client, loan_id: str, *, ui_url: str | None = None
) -> list[AuditEvent]:
    """The loan's trail, every run in order; with ``ui_url`` (``settings.temporal_ui_url``)
    each entry links to its run's raw history in the Temporal Web UI."""
    workflow_id = workflow_id_for(loan_id)

    def link(run_id: str) -> str | None:
        return history_url(ui_url, client.namespace, workflow_id, run_id) if ui_url else None

    converter = history_converter(client.data_converter)
    return await read_trail(converter, workflow_id, loan_runs(client, loan_id), link)


async def read_trail(
    converter: DataConverter,
    workflow_id: str,
    runs: AsyncIterable[tuple[str, list[HistoryEvent]]],
    link: Callable[[str], str | None] = lambda run_id: None,
) -> list[AuditEvent]:
    """The trail of a workflow's runs, given first to latest."""
    trail = _Trail(converter, workflow_id)
    async for run_id, history in runs:
        await trail.read_run(run_id, link(run_id), history)
    # Comments, reasons and conditions are what staff typed: mask what they typed in (H-3).
    return [
        AuditEvent.model_validate(mask_pii_deep(e.model_dump(mode="json"))) for e in trail.events
    ]


class _Trail:
    """Reads a loan's runs, first to latest, into trail entries."""

    def __init__(self, converter: DataConverter, workflow_id: str) -> None:
        self.converter = converter
        self.workflow_id = workflow_id
        self.events: list[AuditEvent] = []
        self.loan_class: str | None = None  # as the register was last told (F-1)

    async def read_run(self, run_id: str, link: str | None, history: list[HistoryEvent]) -> None:
        run = _Run(self, run_id, link)
        await run.read(history)
        self.events += sorted(run.out, key=lambda e: e.event_id)


@dataclass
class _Run:
    """One run's history read into trail entries."""

    trail: _Trail
    run_id: str
    link: str | None
    workflow_type: str = ""
    policy_version: str = ""
    out: list[AuditEvent] = field(default_factory=list)

    def _entry(self, event_id: int, time: datetime, **fields: Any) -> AuditEvent:
        entry = AuditEvent(
            run_id=self.run_id,
            event_id=event_id,
            time=time,
            policy_version=self.policy_version,
            history_url=self.link,
            **fields,
        )
        self.out.append(entry)
        return entry

    def _at(self, event: HistoryEvent, **fields: Any) -> AuditEvent:
        return self._entry(event.event_id, _time(event), **fields)

    async def _decode(self, payloads: Payloads) -> Any:
        values = await self.trail.converter.decode(payloads.payloads) if payloads.payloads else []
        return values[0] if values else None

    async def read(self, history: list[HistoryEvent]) -> None:
        updates: dict[str, AuditEvent] = {}
        scheduled: dict[int, tuple[str, Any]] = {}
        standings: list[_Standing] = []
        for event in history:
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                await self._started(event)
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                accepted = event.workflow_execution_update_accepted_event_attributes
                updates[accepted.accepted_request.meta.update_id] = await self._human_step(event)
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
                completed = event.workflow_execution_update_completed_event_attributes
                step = updates.get(completed.meta.update_id)
                if step is not None and completed.outcome.HasField("failure"):
                    step.accepted = False  # applied later and refused then (servicing)
                    step.details["refusal"] = completed.outcome.failure.message
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                signaled = event.workflow_execution_signaled_event_attributes
                arg = await self._decode(signaled.input)
                self._at(
                    event,
                    kind="signal",
                    step=signaled.signal_name,
                    comment=_text(_read(arg, "reason")),
                    details={"identity": signaled.identity},
                )
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attributes = event.activity_task_scheduled_event_attributes
                name = attributes.activity_type.name
                if name in EFFECTS or name == PROJECTION:
                    inp = await self._decode(attributes.input)
                    scheduled[event.event_id] = (name, inp)
                    if name == PROJECTION:
                        standings.append(_standing(event, inp))
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                done = event.activity_task_completed_event_attributes
                name, inp = scheduled.get(done.scheduled_event_id, ("", None))
                if name in EFFECTS:
                    self._effect(event, name, inp, await self._decode(done.result))
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
                failed = event.activity_task_failed_event_attributes
                name, inp = scheduled.get(failed.scheduled_event_id, ("", None))
                if name in EFFECTS:  # not retried any more: the effect did not happen
                    entry = self._effect(event, name, inp, None)
                    entry.accepted = False
                    entry.comment = failed.failure.message
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                finished = event.workflow_execution_completed_event_attributes
                outcome = await self._decode(finished.result) or {}
                self._at(
                    event,
                    kind="outcome",
                    step="loan_closed",
                    decision=outcome.get("stage"),
                    comment="; ".join(r["message"] for r in outcome.get("reasons", [])) or None,
                )
        standings += await self._replayed_standings(history)
        self._class_changes(sorted(standings, key=lambda s: s.event_id))

    async def _started(self, event: HistoryEvent) -> None:
        started = event.workflow_execution_started_event_attributes
        start = await self._decode(started.input)
        self.workflow_type = started.workflow_type.name
        self.policy_version = start["policy"]["version"]
        if self.workflow_type != LOAN:
            return  # a servicing run: the application was recorded by the first run
        self._at(
            event,
            kind="application",
            step="apply_for_loan",
            actor=start["officer"]["username"],
            role=start["officer"]["role"],
            decision="received",
            details={
                "amount": start["application"]["amount"],
                "term_months": start["application"]["term_months"],
                "purpose": start["application"]["purpose"],
            },
        )

    async def _human_step(self, event: HistoryEvent) -> AuditEvent:
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        arg = await self._decode(request.input.args)
        step, decision, comment, details = _step_summary(
            self.workflow_type, request.input.name, arg
        )
        return self._at(
            event,
            kind="human_step",
            step=request.input.name,
            rule=step.rule if step else None,
            actor=_read(arg, "actor.username"),
            role=_read(arg, "actor.role"),
            decision=decision,
            comment=comment,
            details=details,
        )

    def _effect(self, event: HistoryEvent, name: str, inp: Any, result: Any) -> AuditEvent:
        effect = EFFECTS[name](inp or {}, result, self.workflow_type)
        return self._at(
            event,
            kind="automatic",
            step=name,
            rule=effect.rule,
            decision=effect.decision,
            details=effect.details,
        )

    async def _replayed_standings(self, history: list[HistoryEvent]) -> list[_Standing]:
        """The register rows written by local activities: their input is not in the history,
        so the run is replayed on the current code (as /audit/verify does) and each row is
        taken as the workflow builds it, matched in order to its recorded marker."""
        markers = [e for e in history if _is_projection_marker(e)]
        if not markers:
            return []
        tap = _ProjectionTap()
        replayer = _replayer([tap], self.trail.converter)
        result = await replayer.replay_workflow(
            WorkflowHistory(self.trail.workflow_id, history), raise_on_replay_failure=False
        )
        standings = [
            _Standing(marker.event_id, _time(marker), *row)
            for marker, row in zip(markers, tap.rows, strict=False)
        ]
        if result.replay_failure is not None:
            unread = markers[len(standings)] if len(standings) < len(markers) else history[-1]
            self._at(
                unread,
                kind="notice",
                step="replay_failed",
                decision="the class from here on could not be read; see /audit/verify",
                comment=str(result.replay_failure),
            )
        return standings

    def _class_changes(self, standings: list[_Standing]) -> None:
        """F-1: each change of class as the register was told, old → new (with the D-4
        bucket and days past due)."""
        for standing in standings:
            old = self.trail.loan_class
            if standing.loan_class is None or standing.loan_class == old:
                continue
            self.trail.loan_class = standing.loan_class
            self._entry(
                standing.event_id,
                standing.time,
                kind="automatic",
                step="loan_classified",
                rule="F-1",
                decision=f"{old or 'unclassified'} → {standing.loan_class}",
                details={
                    "from": old,
                    "to": standing.loan_class,
                    "bucket": standing.bucket,
                    "days_past_due": standing.days_past_due,
                },
            )


def _standing(event: HistoryEvent, row: Any) -> _Standing:
    return _Standing(
        event.event_id,
        _time(event),
        _read(row, "loan_class"),
        _read(row, "bucket"),
        _read(row, "days_past_due") or 0,
    )


def _is_projection_marker(event: HistoryEvent) -> bool:
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
        return False
    marker = event.marker_recorded_event_attributes
    if marker.marker_name != "core_local_activity" or marker.HasField("failure"):
        return False
    data = marker.details["data"].payloads
    try:
        activity_type = json.loads(data[0].data).get("activity_type") if data else None
    except ValueError:
        return False
    return bool(activity_type == PROJECTION)


class _Row(NamedTuple):
    """A register row's class, bucket and days past due, as a replay saw it built."""

    loan_class: str | None
    bucket: str | None
    days_past_due: int


class _ProjectionTap(Interceptor):
    """Collects, during a replay, each register row the workflow hands a local activity."""

    def __init__(self) -> None:
        self.rows: list[_Row] = []

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        rows = self.rows

        class Outbound(WorkflowOutboundInterceptor):
            def start_local_activity(self, input: StartLocalActivityInput) -> ActivityHandle[Any]:
                if input.activity == PROJECTION and input.args:
                    row = input.args[0]
                    rows.append(
                        _Row(
                            _enum_value(row.loan_class),
                            _enum_value(row.bucket),
                            row.days_past_due,
                        )
                    )
                return super().start_local_activity(input)

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(Outbound(outbound))

        return Inbound


def _enum_value(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))
