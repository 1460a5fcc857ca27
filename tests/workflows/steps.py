"""Steps shared by the workflow tests: take a loan through origination, read the register."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from adapters.ledger import CASH, Posting, PostingLine, SqlLedger, settlement_account_code
from domain.loan import LoanApplication, Stage
from store.db import SessionFactory
from tests.samples import actor, approve, forward, report, signing
from tests.workflows.conftest import LoanHarness
from workflows.loan import LoanWorkflow
from workflows.messages import (
    DecideLoan,
    LoanOutcome,
    LoanStatus,
    SignContract,
    SubmitInvestigation,
    SubmitReview,
)

Handle = WorkflowHandle[Any, Any]


async def refusal(handle: Handle, update: Any, arg: Any) -> dict[str, Any]:
    """Runs an update that must be refused; returns the refusal's details."""
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(update, arg)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "RuleViolation"
    return dict(cause.details[0])


async def investigate(
    loans: LoanHarness, handle: Handle, amount: str = "30000", term: int = 12
) -> LoanStatus:
    await loans.wait_for_stage(handle, Stage.INVESTIGATION)
    await handle.execute_update(
        LoanWorkflow.submit_investigation,
        SubmitInvestigation(
            actor=actor("officer1"), report=report(amount=amount, term_months=term)
        ),
    )
    return await handle.execute_update(
        LoanWorkflow.submit_investigation,
        SubmitInvestigation(
            actor=actor("officer2"), report=report(amount=amount, term_months=term)
        ),
    )


async def through_approval(loans: LoanHarness, handle: Handle) -> LoanStatus:
    await investigate(loans, handle)
    await handle.execute_update(
        LoanWorkflow.review_loan, SubmitReview(actor=actor("reviewer1"), review=forward())
    )
    return await handle.execute_update(
        LoanWorkflow.decide_loan, DecideLoan(actor=actor("approver1"), decision=approve())
    )


def rows(loans: LoanHarness, model: Any, **where: Any) -> list[Any]:
    with loans.sessions() as session:
        query = select(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return list(session.exec(query))


async def disbursed(loans: LoanHarness, app: LoanApplication) -> tuple[Handle, LoanStatus]:
    """A loan taken through origination to servicing; the handle follows its latest run."""
    handle = await loans.apply(app)
    await investigate(loans, handle, amount=str(app.amount), term=app.term_months)
    await handle.execute_update(
        LoanWorkflow.review_loan, SubmitReview(actor=actor("reviewer1"), review=forward())
    )
    await handle.execute_update(
        LoanWorkflow.decide_loan,
        DecideLoan(actor=actor("approver1"), decision=approve(str(app.amount), app.term_months)),
    )
    await handle.execute_update(
        LoanWorkflow.sign_contract,
        SignContract(actor=actor("officer1"), signing=signing(await loans.today())),
    )
    status = await loans.wait_for_stage(handle, Stage.REPAYING)
    return loans.client.get_workflow_handle(handle.id, result_type=LoanOutcome), status


def spend_proceeds(sessions: SessionFactory, status: LoanStatus, account: str) -> None:
    """The borrower draws the loan in cash (a deposit-system event, outside loanflow)."""
    assert status.approved is not None
    amount = status.approved.amount
    SqlLedger(sessions).post(
        Posting(
            idempotency_key=f"test/{status.loan_id}/drawdown",
            loan_id=status.loan_id,
            kind="withdrawal",
            lines=[
                PostingLine(account=settlement_account_code(account), debit=amount),
                PostingLine(account=CASH, credit=amount),
            ],
        )
    )
