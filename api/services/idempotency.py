"""Idempotency keys at the API: every step and every application is taken once (issue 9).

A step's key is the client's ``Idempotency-Key`` (the web form's request id), a counter
payment's its receipt reference (the natural key of a deposit), and otherwise one derived
from the request and the day, so a double click or a resend after a timeout is the same
step. The step goes to the loan's workflow as an update whose id is the key's digest and the
request's fingerprint (``domain.step_keys``): a repeat gets the first answer, from Temporal
within a run and from the history of the run that applied it after a continue-as-new; the
same key with another request is refused (409).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from adapters.codec import history_converter
from domain.loan import Actor
from domain.step_keys import DIGITS, step_id
from workflows.messages import LoanStatus, workflow_id_for


def _canonical(value: Any) -> Any:
    """Amounts by their value (500, 500.00 and 5E+2 are one amount), dates in ISO form."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not part of a request")


def _digest(*parts: Any) -> str:
    text = json.dumps(
        parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_canonical
    )
    return hashlib.sha256(text.encode()).hexdigest()[:DIGITS]


def fingerprint(step: str, body: BaseModel | dict[str, Any], who: str) -> str:
    """What was asked, by whom: the same request always has the same fingerprint."""
    if isinstance(body, BaseModel):
        body = body.model_dump()
    return _digest(step, who, body)


# Fields the API fills in, not the client: they may differ on a resend (the claimed
# investigation task is closed by the first report), so they are not part of the request.
FILLED_IN_BY_THE_API = {"submit_investigation": frozenset({"task_key"})}


def step_update_id(
    step: str, step_input: BaseModel, actor: Actor, idempotency_key: str | None, today: date
) -> str:
    """The update id a step is sent with (see the module's docstring)."""
    filled_in = FILLED_IN_BY_THE_API.get(step, frozenset())
    body = step_input.model_dump(exclude={"actor", *filled_in})
    reference = body.get("reference") if step == "record_payment" else None
    if reference:  # P-2: one receipt, one deposit, whoever keys it in
        return step_id(_digest("payment", reference), fingerprint(step, body, ""))
    request = fingerprint(step, body, actor.username)
    if idempotency_key:  # a client's key names one step of one person
        key = _digest("key", actor.username, step, idempotency_key)
    else:
        key = _digest("derived", request, today.isoformat())
    return step_id(key, request)


async def applied_earlier(client: Client, loan_id: str, update_id: str) -> bool:
    """Whether the loan's current run was started carrying this step as applied (by an
    earlier run): read from the run's first event, so a refusal costs one page."""
    handle = client.get_workflow_handle(workflow_id_for(loan_id))
    converter = history_converter(client.data_converter)
    try:
        async for event in handle.fetch_history_events(page_size=1):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [start] = await converter.decode(payloads, [dict[str, Any]])
            carried = start.get("state", {}).get("step_ids", []) if isinstance(start, dict) else []
            return update_id in carried
    except RPCError as exc:
        if exc.status is not RPCStatusCode.NOT_FOUND:  # retention removed the history
            raise
    return False


async def first_answer(client: Client, loan_id: str, update_id: str) -> LoanStatus | None:
    """The result a step was first answered with, read from the history of the run that
    applied it, the latest run first; None when no kept history has it (Temporal's
    retention removed it)."""
    converter = history_converter(client.data_converter)
    run_id: str | None = None
    while True:
        handle = client.get_workflow_handle(workflow_id_for(loan_id), run_id=run_id)
        try:
            events = [e async for e in handle.fetch_history_events()]
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return None
            raise
        for event in events:
            completed = event.workflow_execution_update_completed_event_attributes
            if (
                event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
                and completed.meta.update_id == update_id
                and completed.outcome.HasField("success")
            ):
                [answer] = await converter.decode(completed.outcome.success.payloads, [LoanStatus])
                assert isinstance(answer, LoanStatus)
                return answer
        started = events[0].workflow_execution_started_event_attributes if events else None
        run_id = started.continued_execution_run_id if started else None
        if not run_id:
            return None
