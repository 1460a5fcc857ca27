"""Ledger activities: postings with an idempotency key, so a retry never posts twice (rule C-3)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.ledger import (
    LOANS_RECEIVABLE,
    IdempotencyConflict,
    InvalidPosting,
    Ledger,
    Posting,
    PostingLine,
    PostingResult,
    settlement_account_code,
)
from domain.loan import Money


class PostDisbursementInput(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=200)
    loan_id: str
    amount: Money = Field(gt=0)
    settlement_account: str = Field(min_length=1)


class LedgerActivities:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    @activity.defn
    def post_disbursement(self, inp: PostDisbursementInput) -> PostingResult:
        """Dr 1301 loans receivable / Cr the borrower's settlement account (rule C-3)."""
        posting = Posting(
            idempotency_key=inp.idempotency_key,
            loan_id=inp.loan_id,
            kind="disbursement",
            memo="贷款发放",
            lines=[
                PostingLine(account=LOANS_RECEIVABLE, loan_id=inp.loan_id, debit=inp.amount),
                PostingLine(
                    account=settlement_account_code(inp.settlement_account),
                    loan_id=inp.loan_id,
                    credit=inp.amount,
                ),
            ],
        )
        try:
            result = self._ledger.post(posting)
        except (InvalidPosting, IdempotencyConflict) as exc:
            # Retrying cannot fix a malformed posting or a reused key.
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from exc
        activity.logger.info(
            "disbursement of loan %s posted as entry %s (already posted: %s)",
            inp.loan_id,
            result.entry_id,
            result.already_posted,
        )
        return result
