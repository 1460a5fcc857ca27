"""Ledger activities: postings with an idempotency key, so a retry never posts twice (rule C-3).

Each activity maps a refusal of the ledger (malformed posting, reused key, short settlement
account) to a non-retryable ApplicationError named after the exception: retrying the same
input cannot change the outcome, the workflow has to decide what comes next.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.ledger import (
    CASH,
    CONTRACT_INTEREST,
    FEE_INCOME,
    LOAN_LOSS_RESERVE,
    LOANS_RECEIVABLE,
    PENALTY_INTEREST,
    WRITTEN_OFF_MEMO,
    WRITTEN_OFF_MEMO_CONTRA,
    FundsGuard,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidPosting,
    Ledger,
    Posting,
    PostingLine,
    PostingResult,
    settlement_account_code,
)
from domain.allocation import BUCKETS, Allocation
from domain.loan import Money


class PostDisbursementInput(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=200)
    loan_id: str
    amount: Money = Field(gt=0)
    settlement_account: str = Field(min_length=1)


class SettlementBalanceInput(BaseModel):
    settlement_account: str = Field(min_length=1)


class PostDepositInput(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=200)
    loan_id: str
    settlement_account: str = Field(min_length=1)
    amount: Money = Field(gt=0)
    value_date: date
    memo: str = Field(default="存入结算账户", max_length=200)


class PostRepaymentInput(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=200)
    loan_id: str
    settlement_account: str = Field(min_length=1)
    allocation: Allocation
    value_date: date
    memo: str = Field(default="贷款还款", max_length=200)
    fee: Money = Field(Decimal("0"), ge=0)  # P-4: the prepayment fee, if the policy sets one


class PostWriteOffInput(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=200)
    loan_id: str
    principal: Money = Field(gt=0)
    value_date: date


class PostRecoveryInput(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=200)
    loan_id: str
    settlement_account: str = Field(min_length=1)
    amount: Money = Field(gt=0)
    value_date: date


def _refused(exc: Exception) -> ApplicationError:
    return ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True)


def _pair(loan_id: str, debit: str, credit: str, amount: Decimal) -> list[PostingLine]:
    return [
        PostingLine(account=debit, loan_id=loan_id, debit=amount),
        PostingLine(account=credit, loan_id=loan_id, credit=amount),
    ]


class LedgerActivities:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def _post(self, posting: Posting, guard: FundsGuard | None = None) -> PostingResult:
        try:
            result = self._ledger.post(posting, guard=guard)
        except (InvalidPosting, IdempotencyConflict, InsufficientFunds) as exc:
            raise _refused(exc) from exc
        activity.logger.info(
            "%s of loan %s posted as entry %s (already posted: %s)",
            posting.kind,
            posting.loan_id,
            result.entry_id,
            result.already_posted,
        )
        return result

    @activity.defn
    def post_disbursement(self, inp: PostDisbursementInput) -> PostingResult:
        """Dr 1301 loans receivable / Cr the borrower's settlement account (rule C-3)."""
        return self._post(
            Posting(
                idempotency_key=inp.idempotency_key,
                loan_id=inp.loan_id,
                kind="disbursement",
                memo="贷款发放",
                lines=_pair(
                    inp.loan_id,
                    LOANS_RECEIVABLE,
                    settlement_account_code(inp.settlement_account),
                    inp.amount,
                ),
            )
        )

    @activity.defn
    def settlement_balance(self, inp: SettlementBalanceInput) -> Decimal:
        """Rule P-2: what the settlement account holds to pay with (结算账户可用余额)."""
        return self._ledger.available(inp.settlement_account)

    @activity.defn
    def post_deposit(self, inp: PostDepositInput) -> PostingResult:
        """The borrower funds the settlement account (存入), rule P-2: Dr 1001 cash / Cr 2011."""
        return self._post(
            Posting(
                idempotency_key=inp.idempotency_key,
                loan_id=inp.loan_id,
                kind="deposit",
                memo=inp.memo,
                value_date=inp.value_date,
                lines=_pair(
                    inp.loan_id, CASH, settlement_account_code(inp.settlement_account), inp.amount
                ),
            )
        )

    @activity.defn
    def post_repayment(self, inp: PostRepaymentInput) -> PostingResult:
        """Debit a repayment (扣款还款) allocated by rule P-6 from the settlement account (P-2).

        Dr 2011 the applied amount / Cr 1301 principal, Cr 6011.01 contract interest, Cr 6011.02
        penalty and compound interest (罚息、复利), Cr 6021 a prepayment fee (P-4); zero parts
        get no line. ``unapplied`` stays in the settlement account. Refused, with nothing
        written, if the account is short.
        """
        alloc = inp.allocation
        negative = [bucket for bucket in BUCKETS if getattr(alloc, bucket) < 0]
        if negative:
            raise _refused(InvalidPosting(f"{inp.idempotency_key}: negative {', '.join(negative)}"))
        if alloc.applied <= 0:
            raise _refused(InvalidPosting(f"{inp.idempotency_key}: the allocation applies nothing"))
        account = settlement_account_code(inp.settlement_account)
        credits = [
            (LOANS_RECEIVABLE, alloc.overdue_principal + alloc.current_principal),
            (CONTRACT_INTEREST, alloc.overdue_interest + alloc.current_interest),
            (PENALTY_INTEREST, alloc.penalty_interest),
            (FEE_INCOME, inp.fee),
        ]
        debit = alloc.applied + inp.fee
        lines = [PostingLine(account=account, loan_id=inp.loan_id, debit=debit)]
        lines += [
            PostingLine(account=code, loan_id=inp.loan_id, credit=amount)
            for code, amount in credits
            if amount > 0
        ]
        return self._post(
            Posting(
                idempotency_key=inp.idempotency_key,
                loan_id=inp.loan_id,
                kind="repayment",
                memo=inp.memo,
                value_date=inp.value_date,
                lines=lines,
            ),
            guard=FundsGuard(settlement_account=inp.settlement_account),
        )

    @activity.defn
    def post_write_off(self, inp: PostWriteOffInput) -> PostingResult:
        """Rule Z-1: write off a loss loan's principal (核销), the claim kept on record (账销案存).

        Dr 1304 loan-loss reserve / Cr 1301, and the off-balance pair Dr 7001 / Cr 7002 for the
        same principal, which recoveries later reverse.
        """
        return self._post(
            Posting(
                idempotency_key=inp.idempotency_key,
                loan_id=inp.loan_id,
                kind="write_off",
                memo="贷款核销",
                value_date=inp.value_date,
                lines=_pair(inp.loan_id, LOAN_LOSS_RESERVE, LOANS_RECEIVABLE, inp.principal)
                + _pair(inp.loan_id, WRITTEN_OFF_MEMO, WRITTEN_OFF_MEMO_CONTRA, inp.principal),
            )
        )

    @activity.defn
    def post_recovery(self, inp: PostRecoveryInput) -> PostingResult:
        """Collect on a written-off loan (核销后收回), rule Z-1, from the settlement account.

        Dr 2011 / Cr 1304 loan-loss reserve, and Dr 7002 / Cr 7001 to shrink the off-balance
        record by the same amount. Refused, with nothing written, if the account is short.
        """
        return self._post(
            Posting(
                idempotency_key=inp.idempotency_key,
                loan_id=inp.loan_id,
                kind="recovery",
                memo="核销贷款收回",
                value_date=inp.value_date,
                lines=_pair(
                    inp.loan_id,
                    settlement_account_code(inp.settlement_account),
                    LOAN_LOSS_RESERVE,
                    inp.amount,
                )
                + _pair(inp.loan_id, WRITTEN_OFF_MEMO_CONTRA, WRITTEN_OFF_MEMO, inp.amount),
            ),
            guard=FundsGuard(settlement_account=inp.settlement_account),
        )
