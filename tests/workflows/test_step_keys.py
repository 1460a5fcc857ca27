"""Exactly once through the workflow interceptor, for the steps only an overdue loan takes
(issue 9): the collection action (D-1), the notice's receipt (D-3) and the head's finding of
a wilful defaulter (D-5), sent fifty times at once with the id the API gives them, then again
after the loan has continued as new. The API tests cover the other steps over HTTP; every
step goes through the same interceptor (``workflows/step_keys.py``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.workflow import _Definition

from api.services import idempotency
from api.services.audit import loan_runs
from domain.step_keys import STEP_IDS_KEPT, key_of, step_id
from store.models import JournalEntry
from tests.samples import actor, application
from tests.temporal_env import applied_steps
from tests.workflows.conftest import LoanHarness
from tests.workflows.steps import Handle, disbursed, rows, spend_proceeds
from tests.workflows.test_servicing import sleep_until, status_of
from workflows.loan import LoanWorkflow
from workflows.messages import (
    LoanStatus,
    MarkWilfulDefault,
    RecordCollectionAction,
    RecordNoticeReceipt,
    RecordPayment,
)
from workflows.servicing import LoanServicingWorkflow
from workflows.step_keys import ALREADY_APPLIED

AT_ONCE = 50


async def fifty(handle: Handle, update: Any, arg: Any, update_id: str) -> LoanStatus:
    answers = await asyncio.gather(
        *(handle.execute_update(update, arg, id=update_id) for _ in range(AT_ONCE))
    )
    assert all(a == answers[0] for a in answers)
    first: LoanStatus = answers[0]
    return first


async def test_overdue_steps_are_applied_once_and_recognised_after_continue_as_new(
    loans: LoanHarness,
) -> None:
    today = await loans.today()
    app = application(today, purpose="durable_goods", repayment_method="lump_sum", term_months=6)
    handle, status = await disbursed(loans, app)
    spend_proceeds(loans.sessions, status, app.applicant.settlement_account)
    [line] = status.schedule
    overdue_on = line.due_date + timedelta(days=1)
    await sleep_until(loans, overdue_on)
    view = (await status_of(handle)).servicing
    assert view is not None
    [rung], [notice] = view.collection, view.notices

    call = RecordCollectionAction(
        actor=actor("officer1"), task_key=rung.task_key, actions=["电话提醒"], outcome="承诺还款"
    )
    call_id = step_id("c" * 16, "1" * 16)
    called = await fifty(handle, LoanServicingWorkflow.record_collection_action, call, call_id)
    receipt = RecordNoticeReceipt(
        actor=actor("officer1"), notice_key=notice.notice_key, received_on=overdue_on
    )
    receipt_id = step_id("d" * 16, "2" * 16)
    await fifty(handle, LoanServicingWorkflow.record_notice_receipt, receipt, receipt_id)
    finding = MarkWilfulDefault(actor=actor("head1"), reason="有能力还款而拒不还款")
    finding_id = step_id("e" * 16, "3" * 16)
    await fifty(handle, LoanServicingWorkflow.mark_wilful_default, finding, finding_id)

    # The same key with another request: refused, naming the key (409 at the API).
    with pytest.raises(WorkflowUpdateFailedError) as other:
        await handle.execute_update(
            LoanServicingWorkflow.record_collection_action, call, id=step_id("c" * 16, "9" * 16)
        )
    assert isinstance(other.value.cause, ApplicationError)
    assert dict(other.value.cause.details[0])["refusals"][0]["field"] == "Idempotency-Key"

    # Ten steps end a run (MAX_STEPS_PER_RUN); in the next the steps are still known.
    for n in range(7):
        payment = RecordPayment(actor=actor("teller1"), amount=Decimal("0.01"), reference=f"R{n}")
        await handle.execute_update(
            LoanServicingWorkflow.record_payment, payment, id=step_id(f"{n:016x}", "0" * 16)
        )
    runs = [run async for run, _ in loan_runs(loans.client, status.loan_id)]
    assert len(runs) >= 3
    with pytest.raises(WorkflowUpdateFailedError) as again:
        await handle.execute_update(
            LoanServicingWorkflow.record_collection_action, call, id=call_id
        )
    assert isinstance(again.value.cause, ApplicationError)
    assert again.value.cause.type == ALREADY_APPLIED
    assert called.servicing is not None and called.servicing.collection[0].done_by == "officer1"

    counts = await applied_steps(loans.client, status.loan_id)
    assert (
        counts["record_collection_action"],
        counts["record_notice_receipt"],
        counts["mark_wilful_default"],
    ) == (1, 1, 1)
    carried = await _carried_step_ids(loans, handle)
    assert {call_id, receipt_id, finding_id} <= set(carried)
    assert len(carried) <= STEP_IDS_KEPT


async def _carried_step_ids(loans: LoanHarness, handle: Handle) -> list[str]:
    """The step ids the loan's latest run was started with (carried across runs)."""
    async for event in handle.fetch_history_events():
        started = event.workflow_execution_started_event_attributes
        [start] = await loans.client.data_converter.decode(
            started.input.payloads, [dict[str, Any]]
        )
        ids: list[str] = start["state"]["step_ids"]
        return ids
    raise AssertionError("no history")


def test_every_step_has_a_validator_so_the_step_keys_see_it() -> None:
    """The SDK calls an interceptor's validator only for an update that has one."""
    for workflow_class in (LoanWorkflow, LoanServicingWorkflow):
        updates = _Definition.must_from_class(workflow_class).updates
        assert updates and all(u.validator is not None for u in updates.values()), workflow_class


async def test_one_receipt_with_two_amounts_at_once_is_one_deposit(loans: LoanHarness) -> None:
    """P-2: the receipt is the payment's key, whatever the amount typed; sent together, the
    second is refused while the first waits its turn, and a receipt taken once is refused
    for the loan's life, past the step-key bound too."""
    today = await loans.today()
    app = application(today, purpose="durable_goods", repayment_method="lump_sum", term_months=6)
    handle, status = await disbursed(loans, app)
    teller = actor("teller1")
    payments = [
        RecordPayment(actor=teller, amount=Decimal(amount), reference="GM-7")
        for amount in ("500.00", "5.00")
    ]
    ids = [idempotency.step_update_id("record_payment", p, teller, None, today) for p in payments]
    assert ids[0] != ids[1] and key_of(ids[0]) == key_of(ids[1])
    outcomes = await asyncio.gather(
        *(
            handle.execute_update(LoanServicingWorkflow.record_payment, p, id=i)
            for p, i in zip(payments, ids, strict=True)
        ),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, WorkflowUpdateFailedError)]
    assert len(refused) == 1 and len(outcomes) == 2
    deposits = [e for e in rows(loans, JournalEntry, loan_id=status.loan_id) if e.kind == "deposit"]
    assert len(deposits) == 1

    # Forgotten by the step keys (another id), the receipt is still the loan's: refused.
    with pytest.raises(WorkflowUpdateFailedError) as again:
        await handle.execute_update(
            LoanServicingWorkflow.record_payment, payments[0], id=step_id("f" * 16, "f" * 16)
        )
    assert isinstance(again.value.cause, ApplicationError)
    assert dict(again.value.cause.details[0])["refusals"][0]["field"] == "reference"
