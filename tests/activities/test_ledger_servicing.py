"""Servicing postings: deposits and repayments (P-2, P-6), write-off and recovery (Z-1).

Every test runs on SQLite and PostgreSQL through the ``sessions`` fixture.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel
from sqlmodel import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ledger import (
    LedgerActivities,
    PostDepositInput,
    PostDisbursementInput,
    PostRecoveryInput,
    PostRepaymentInput,
    PostWriteOffInput,
    SettlementBalanceInput,
)
from adapters.ledger import (
    CASH,
    CONTRACT_INTEREST,
    INTEREST_INCOME,
    LOAN_LOSS_RESERVE,
    LOANS_RECEIVABLE,
    PENALTY_INTEREST,
    WRITTEN_OFF_MEMO,
    WRITTEN_OFF_MEMO_CONTRA,
    FundsGuard,
    InsufficientFunds,
    InvalidPosting,
    Posting,
    PostingLine,
    PostingResult,
    SqlLedger,
    settlement_account_code,
)
from domain.allocation import Allocation
from store.db import SessionFactory
from store.models import JournalEntry, JournalLine

ACCOUNT = "6228480012345678"
SETTLEMENT = settlement_account_code(ACCOUNT)
DAY = date(2025, 3, 20)
env = ActivityEnvironment()


def D(amount: str) -> Decimal:
    return Decimal(amount)


def row_counts(sessions: SessionFactory) -> tuple[int, int]:
    with sessions() as s:
        entries = s.exec(select(func.count()).select_from(JournalEntry)).one()
        lines = s.exec(select(func.count()).select_from(JournalLine)).one()
    return entries, lines


def lines_of(ledger: SqlLedger, loan_id: str, key: str) -> list[tuple[str, Decimal, Decimal]]:
    [entry] = [e for e in ledger.entries(loan_id) if e.idempotency_key == key]
    return sorted((ln.account, ln.debit, ln.credit) for ln in entry.lines)


def deposit(key: str, amount: str, loan_id: str = "L1", account: str = ACCOUNT) -> PostDepositInput:
    return PostDepositInput(
        idempotency_key=key,
        loan_id=loan_id,
        settlement_account=account,
        amount=D(amount),
        value_date=DAY,
    )


def repayment(key: str, loan_id: str = "L1", **parts: str) -> PostRepaymentInput:
    return PostRepaymentInput(
        idempotency_key=key,
        loan_id=loan_id,
        settlement_account=ACCOUNT,
        allocation=Allocation(**{bucket: D(v) for bucket, v in parts.items()}),
        value_date=DAY,
    )


@pytest.fixture
def ledger(sessions: SessionFactory) -> SqlLedger:
    return SqlLedger(sessions)


@pytest.fixture
def acts(ledger: SqlLedger) -> LedgerActivities:
    return LedgerActivities(ledger)


def disburse(acts: LedgerActivities, loan_id: str, amount: str, account: str) -> None:
    env.run(
        acts.post_disbursement,
        PostDisbursementInput(
            idempotency_key=f"loan/{loan_id}/disbursement",
            loan_id=loan_id,
            amount=D(amount),
            settlement_account=account,
        ),
    )


def test_deposit_then_repayments_settle_the_loan_to_the_cent(
    ledger: SqlLedger, acts: LedgerActivities
) -> None:
    # The loan is paid out to another account, so only deposits fund the repayments.
    disburse(acts, "L1", "10000.00", account="6228480099990000")
    env.run(acts.post_deposit, deposit("d1", "5060.00"))
    assert lines_of(ledger, "L1", "d1") == [
        (CASH, D("5060.00"), D("0.00")),
        (SETTLEMENT, D("0.00"), D("5060.00")),
    ]
    first = repayment("r1", current_interest="60.00", current_principal="5000.00")
    env.run(acts.post_repayment, first)
    assert lines_of(ledger, "L1", "r1") == [
        (LOANS_RECEIVABLE, D("0.00"), D("5000.00")),
        (SETTLEMENT, D("5060.00"), D("0.00")),
        (CONTRACT_INTEREST, D("0.00"), D("60.00")),
    ]
    assert env.run(acts.settlement_balance, SettlementBalanceInput(settlement_account=ACCOUNT)) == 0

    env.run(acts.post_deposit, deposit("d2", "5034.00"))
    second = repayment(
        "r2",
        penalty_interest="1.23",
        overdue_interest="0.45",
        overdue_principal="4999.99",
        current_interest="30.17",
        current_principal="0.01",
        unapplied="2.15",
    )
    env.run(acts.post_repayment, second)
    assert lines_of(ledger, "L1", "r2") == [
        (LOANS_RECEIVABLE, D("0.00"), D("5000.00")),
        (SETTLEMENT, D("5031.85"), D("0.00")),
        (CONTRACT_INTEREST, D("0.00"), D("30.62")),
        (PENALTY_INTEREST, D("0.00"), D("1.23")),
    ]

    assert ledger.balance(LOANS_RECEIVABLE, loan_id="L1") == 0
    assert ledger.balance(CONTRACT_INTEREST) == D("-90.62")
    assert ledger.balance(PENALTY_INTEREST) == D("-1.23")
    assert ledger.balance(INTEREST_INCOME) == D("-91.85")
    # The unapplied part stays in the account.
    assert ledger.available(ACCOUNT) == D("2.15")
    assert env.run(
        acts.settlement_balance, SettlementBalanceInput(settlement_account=ACCOUNT)
    ) == D("2.15")
    assert sum(ledger.account_balances().values()) == 0
    assert [e.kind for e in ledger.entries("L1")] == [
        "disbursement",
        "deposit",
        "repayment",
        "deposit",
        "repayment",
    ]


def test_repayment_with_only_interest_writes_no_zero_lines(
    ledger: SqlLedger, acts: LedgerActivities
) -> None:
    env.run(acts.post_deposit, deposit("d", "80.00"))
    env.run(acts.post_repayment, repayment("r", current_interest="75.50"))
    assert lines_of(ledger, "L1", "r") == [
        (SETTLEMENT, D("75.50"), D("0.00")),
        (CONTRACT_INTEREST, D("0.00"), D("75.50")),
    ]


def test_value_date_is_stored_and_returned(ledger: SqlLedger, acts: LedgerActivities) -> None:
    disburse(acts, "L1", "1000.00", ACCOUNT)
    env.run(acts.post_deposit, deposit("d", "10.00").model_copy(update={"value_date": DAY}))
    env.run(
        acts.post_repayment,
        repayment("r", current_interest="5.00").model_copy(
            update={"value_date": date(2025, 3, 21)}
        ),
    )
    assert [(e.kind, e.value_date) for e in ledger.entries("L1")] == [
        ("disbursement", None),
        ("deposit", DAY),
        ("repayment", date(2025, 3, 21)),
    ]
    [repaid] = [e for e in ledger.entries("L1") if e.kind == "repayment"]
    assert repaid.memo == "贷款还款"


def _funded(acts: LedgerActivities) -> None:
    env.run(acts.post_deposit, deposit("funding", "1000.00", loan_id="L0"))


# (activity name, input, the same key with different content)
RETRIES: list[tuple[str, BaseModel, BaseModel]] = [
    ("post_deposit", deposit("k", "100.00"), deposit("k", "100.01")),
    (
        "post_repayment",
        repayment("k", current_interest="10.00", current_principal="90.00"),
        repayment("k", current_interest="10.01", current_principal="89.99"),
    ),
    (
        "post_write_off",
        PostWriteOffInput(idempotency_key="k", loan_id="L1", principal=D("300"), value_date=DAY),
        PostWriteOffInput(idempotency_key="k", loan_id="L1", principal=D("301"), value_date=DAY),
    ),
    (
        "post_recovery",
        PostRecoveryInput(
            idempotency_key="k",
            loan_id="L1",
            settlement_account=ACCOUNT,
            amount=D("50"),
            value_date=DAY,
        ),
        PostRecoveryInput(
            idempotency_key="k",
            loan_id="L1",
            settlement_account="6228480000000001",
            amount=D("50"),
            value_date=DAY,
        ),
    ),
]
RETRY_IDS = [name for name, _, _ in RETRIES]


@pytest.mark.parametrize(("name", "inp", "_other"), RETRIES, ids=RETRY_IDS)
def test_retry_posts_once(
    sessions: SessionFactory, acts: LedgerActivities, name: str, inp: BaseModel, _other: BaseModel
) -> None:
    _funded(acts)
    before = row_counts(sessions)
    activity_fn: Callable[[Any], PostingResult] = getattr(acts, name)
    results = [env.run(activity_fn, inp) for _ in range(3)]
    assert len({r.entry_id for r in results}) == 1
    assert [r.already_posted for r in results] == [False, True, True]
    assert row_counts(sessions)[0] == before[0] + 1


@pytest.mark.parametrize(("name", "inp", "other"), RETRIES, ids=RETRY_IDS)
def test_same_key_different_content_is_not_retried(
    sessions: SessionFactory, acts: LedgerActivities, name: str, inp: BaseModel, other: BaseModel
) -> None:
    _funded(acts)
    activity_fn: Callable[[Any], PostingResult] = getattr(acts, name)
    env.run(activity_fn, inp)
    before = row_counts(sessions)
    with pytest.raises(ApplicationError) as info:
        env.run(activity_fn, other)
    assert info.value.non_retryable
    assert info.value.type == "IdempotencyConflict"
    assert row_counts(sessions) == before


def test_overdraft_is_refused_and_a_posted_repayment_still_retries(
    sessions: SessionFactory, ledger: SqlLedger, acts: LedgerActivities
) -> None:
    env.run(acts.post_deposit, deposit("d", "100.00"))
    before = row_counts(sessions)
    with pytest.raises(ApplicationError) as info:
        env.run(acts.post_repayment, repayment("short", current_principal="100.01"))
    assert info.value.non_retryable
    assert info.value.type == "InsufficientFunds"
    assert "available 100.00" in str(info.value)
    assert "needed 100.01" in str(info.value)
    assert row_counts(sessions) == before
    assert ledger.available(ACCOUNT) == D("100.00")
    assert not [e for e in ledger.entries("L1") if e.idempotency_key == "short"]

    paid = env.run(acts.post_repayment, repayment("r", current_principal="100.00"))
    assert ledger.available(ACCOUNT) == 0
    # The activity completed but its result was lost: the retry finds the entry, not the funds.
    again = env.run(acts.post_repayment, repayment("r", current_principal="100.00"))
    assert again == PostingResult(entry_id=paid.entry_id, already_posted=True)
    assert ledger.available(ACCOUNT) == 0


def test_overdraft_of_the_ledger_port_is_refused(
    sessions: SessionFactory, ledger: SqlLedger
) -> None:
    posting = Posting(
        idempotency_key="p",
        loan_id="L1",
        kind="repayment",
        lines=[
            PostingLine(account=SETTLEMENT, loan_id="L1", debit=D("0.01")),
            PostingLine(account=LOANS_RECEIVABLE, loan_id="L1", credit=D("0.01")),
        ],
    )
    with pytest.raises(InsufficientFunds) as info:
        ledger.post(posting, guard=FundsGuard(settlement_account=ACCOUNT))
    assert (info.value.available, info.value.needed) == (D("0.00"), D("0.01"))
    assert row_counts(sessions) == (0, 0)
    # A guard on an account the posting does not debit would check nothing.
    with pytest.raises(InvalidPosting):
        ledger.post(posting, guard=FundsGuard(settlement_account="6228480000000001"))
    assert row_counts(sessions) == (0, 0)


def test_concurrent_repayments_never_overdraw(ledger: SqlLedger, acts: LedgerActivities) -> None:
    env.run(acts.post_deposit, deposit("d", "100.00"))
    barrier = threading.Barrier(6)

    def pay(n: int) -> str:
        barrier.wait()
        try:
            ActivityEnvironment().run(
                acts.post_repayment, repayment(f"r{n}", current_principal="60.00")
            )
        except ApplicationError as exc:
            return exc.type or ""
        return "posted"

    with ThreadPoolExecutor(6) as pool:
        outcomes = sorted(pool.map(pay, range(6)))
    assert outcomes == ["InsufficientFunds"] * 5 + ["posted"]
    assert ledger.available(ACCOUNT) == D("40.00")


@pytest.mark.parametrize(
    "allocation",
    [
        Allocation(),
        Allocation(unapplied=D("5.00")),
        Allocation(current_interest=D("-1.00"), current_principal=D("2.00")),
    ],
    ids=["zero", "only-unapplied", "negative-part"],
)
def test_repayment_that_applies_nothing_is_refused(
    sessions: SessionFactory, acts: LedgerActivities, allocation: Allocation
) -> None:
    env.run(acts.post_deposit, deposit("d", "100.00"))
    before = row_counts(sessions)
    inp = repayment("r").model_copy(update={"allocation": allocation})
    with pytest.raises(ApplicationError) as info:
        env.run(acts.post_repayment, inp)
    assert info.value.non_retryable
    assert info.value.type == "InvalidPosting"
    assert row_counts(sessions) == before


def test_write_off_then_recovery_keeps_the_claim_on_record(
    ledger: SqlLedger, acts: LedgerActivities
) -> None:
    disburse(acts, "L5", "5000.00", account="6228480099990000")
    env.run(acts.post_deposit, deposit("d1", "1250.00", loan_id="L5"))
    env.run(
        acts.post_repayment,
        repayment("r1", loan_id="L5", current_interest="50.00", current_principal="1200.00"),
    )
    write_off = PostWriteOffInput(
        idempotency_key="loan/L5/write-off", loan_id="L5", principal=D("3800.00"), value_date=DAY
    )
    env.run(acts.post_write_off, write_off)
    assert lines_of(ledger, "L5", "loan/L5/write-off") == [
        (LOANS_RECEIVABLE, D("0.00"), D("3800.00")),
        (LOAN_LOSS_RESERVE, D("3800.00"), D("0.00")),
        (WRITTEN_OFF_MEMO, D("3800.00"), D("0.00")),
        (WRITTEN_OFF_MEMO_CONTRA, D("0.00"), D("3800.00")),
    ]
    assert ledger.balance(LOANS_RECEIVABLE, loan_id="L5") == 0
    assert ledger.balance(WRITTEN_OFF_MEMO, loan_id="L5") == D("3800.00")

    recovery = PostRecoveryInput(
        idempotency_key="loan/L5/recovery/1",
        loan_id="L5",
        settlement_account=ACCOUNT,
        amount=D("500.00"),
        value_date=date(2025, 9, 1),
    )
    # Nothing in the account yet: refused, nothing written.
    with pytest.raises(ApplicationError) as info:
        env.run(acts.post_recovery, recovery)
    assert info.value.type == "InsufficientFunds"
    assert ledger.balance(WRITTEN_OFF_MEMO, loan_id="L5") == D("3800.00")

    env.run(acts.post_deposit, deposit("d2", "500.00", loan_id="L5"))
    env.run(acts.post_recovery, recovery)
    assert lines_of(ledger, "L5", "loan/L5/recovery/1") == [
        (LOAN_LOSS_RESERVE, D("0.00"), D("500.00")),
        (SETTLEMENT, D("500.00"), D("0.00")),
        (WRITTEN_OFF_MEMO, D("0.00"), D("500.00")),
        (WRITTEN_OFF_MEMO_CONTRA, D("500.00"), D("0.00")),
    ]
    assert ledger.balance(WRITTEN_OFF_MEMO, loan_id="L5") == D("3300.00")
    assert ledger.balance(WRITTEN_OFF_MEMO_CONTRA, loan_id="L5") == D("-3300.00")
    assert ledger.balance(LOAN_LOSS_RESERVE, loan_id="L5") == D("3300.00")
    assert ledger.available(ACCOUNT) == 0
    assert [(e.kind, e.value_date) for e in ledger.entries("L5")][-2:] == [
        ("deposit", DAY),
        ("recovery", date(2025, 9, 1)),
    ]
    assert sum(ledger.account_balances().values()) == 0
