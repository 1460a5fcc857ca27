"""The embedded ledger and the disbursement activity (rule C-3), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlmodel import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ledger import LedgerActivities, PostDisbursementInput
from adapters.ledger import (
    LOANS_RECEIVABLE,
    SETTLEMENT_DEPOSITS,
    IdempotencyConflict,
    InvalidPosting,
    Posting,
    PostingLine,
    PostingResult,
    SqlLedger,
    UnbalancedPosting,
    settlement_account_code,
)
from store.db import SessionFactory
from store.models import JournalEntry, JournalLine


def payout(key: str, loan_id: str, amount: str, account: str = "6230000012345678") -> Posting:
    return Posting(
        idempotency_key=key,
        loan_id=loan_id,
        kind="disbursement",
        lines=[
            PostingLine(account=LOANS_RECEIVABLE, loan_id=loan_id, debit=Decimal(amount)),
            PostingLine(
                account=settlement_account_code(account), loan_id=loan_id, credit=Decimal(amount)
            ),
        ],
    )


def row_counts(sessions: SessionFactory) -> tuple[int, int]:
    with sessions() as s:
        entries = s.exec(select(func.count()).select_from(JournalEntry)).one()
        lines = s.exec(select(func.count()).select_from(JournalLine)).one()
    return entries, lines


def test_balanced_posting_is_written(sessions: SessionFactory) -> None:
    ledger = SqlLedger(sessions)
    result = ledger.post(payout("k1", "L1", "30000.00"))
    assert not result.already_posted
    [entry] = ledger.entries("L1")
    assert entry.entry_id == result.entry_id
    assert entry.kind == "disbursement"
    assert entry.posted_at.tzinfo is not None
    assert sorted((ln.account, ln.debit, ln.credit) for ln in entry.lines) == [
        (LOANS_RECEIVABLE, Decimal("30000.00"), Decimal("0.00")),
        ("2011.6230000012345678", Decimal("0.00"), Decimal("30000.00")),
    ]
    assert row_counts(sessions) == (1, 2)


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (
            [
                PostingLine(account="1301", debit=Decimal("100.00")),
                PostingLine(account="2011", credit=Decimal("99.99")),
            ],
            UnbalancedPosting,
        ),
        ([PostingLine(account="1301", debit=Decimal("100"))], InvalidPosting),
        (
            [
                PostingLine(account="1301", debit=Decimal("1.005")),
                PostingLine(account="2011", credit=Decimal("1.005")),
            ],
            InvalidPosting,
        ),
        (
            [
                PostingLine(account="1301", debit=Decimal("5"), credit=Decimal("5")),
                PostingLine(account="2011", debit=Decimal("0")),
            ],
            InvalidPosting,
        ),
        (
            [
                PostingLine(account="1301", debit=Decimal("-5")),
                PostingLine(account="2011", credit=Decimal("-5")),
            ],
            InvalidPosting,
        ),
    ],
    ids=["unbalanced", "one-line", "sub-fen", "both-sides", "negative"],
)
def test_malformed_posting_is_refused_and_nothing_written(
    sessions: SessionFactory, lines: list[PostingLine], error: type[Exception]
) -> None:
    ledger = SqlLedger(sessions)
    with pytest.raises(error):
        ledger.post(Posting(idempotency_key="bad", loan_id="L1", kind="test", lines=lines))
    assert row_counts(sessions) == (0, 0)
    assert ledger.entries("L1") == []


def test_same_key_twice_posts_once(sessions: SessionFactory) -> None:
    ledger = SqlLedger(sessions)
    first = ledger.post(payout("k1", "L1", "500.00"))
    again = ledger.post(payout("k1", "L1", "500.00"))
    assert again.entry_id == first.entry_id
    assert again.already_posted
    assert row_counts(sessions) == (1, 2)


def test_same_key_different_lines_is_a_conflict(sessions: SessionFactory) -> None:
    ledger = SqlLedger(sessions)
    ledger.post(payout("k1", "L1", "500.00"))
    with pytest.raises(IdempotencyConflict):
        ledger.post(payout("k1", "L1", "600.00"))
    assert row_counts(sessions) == (1, 2)
    assert ledger.balance(LOANS_RECEIVABLE) == Decimal("500.00")


def test_balances_per_loan_and_per_account(sessions: SessionFactory) -> None:
    ledger = SqlLedger(sessions)
    ledger.post(payout("k1", "L1", "1000.00", account="111111111"))
    ledger.post(payout("k2", "L2", "250.50", account="222222222"))
    # A repayment of L1: Dr settlement / Cr loans receivable.
    ledger.post(
        Posting(
            idempotency_key="k3",
            loan_id="L1",
            kind="repayment",
            lines=[
                PostingLine(account="2011.111111111", loan_id="L1", debit=Decimal("100.00")),
                PostingLine(account=LOANS_RECEIVABLE, loan_id="L1", credit=Decimal("100.00")),
            ],
        )
    )
    assert ledger.balance(LOANS_RECEIVABLE) == Decimal("1150.50")
    assert ledger.balance(LOANS_RECEIVABLE, loan_id="L1") == Decimal("900.00")
    assert ledger.balance(LOANS_RECEIVABLE, loan_id="L2") == Decimal("250.50")
    assert ledger.balance("2011.111111111") == Decimal("-900.00")
    # The control account rolls up its sub-accounts.
    assert ledger.balance(SETTLEMENT_DEPOSITS) == Decimal("-1150.50")
    assert ledger.balance("9999") == Decimal("0.00")
    balances = ledger.account_balances()
    assert balances == {
        "1301": Decimal("1150.50"),
        "2011.111111111": Decimal("-900.00"),
        "2011.222222222": Decimal("-250.50"),
    }
    assert sum(balances.values()) == 0
    assert [e.kind for e in ledger.entries("L1")] == ["disbursement", "repayment"]


def test_post_disbursement_retried_posts_once(sessions: SessionFactory) -> None:
    ledger = SqlLedger(sessions)
    activities = LedgerActivities(ledger)
    inp = PostDisbursementInput(
        idempotency_key="loan/L7/disbursement",
        loan_id="L7",
        amount=Decimal("42000.00"),
        settlement_account="6230000099990001",
    )
    env = ActivityEnvironment()
    results = [env.run(activities.post_disbursement, inp) for _ in range(3)]
    assert len({r.entry_id for r in results}) == 1
    assert [r.already_posted for r in results] == [False, True, True]
    assert ledger.balance(LOANS_RECEIVABLE, loan_id="L7") == Decimal("42000.00")
    assert ledger.balance(settlement_account_code("6230000099990001")) == Decimal("-42000.00")
    [entry] = ledger.entries("L7")
    assert entry.kind == "disbursement"


def test_post_disbursement_key_reused_is_not_retried(sessions: SessionFactory) -> None:
    activities = LedgerActivities(SqlLedger(sessions))
    env = ActivityEnvironment()
    base = {"idempotency_key": "k", "loan_id": "L7", "settlement_account": "6230000099990001"}
    env.run(activities.post_disbursement, PostDisbursementInput(**base, amount=Decimal("1000")))
    with pytest.raises(ApplicationError) as info:
        env.run(activities.post_disbursement, PostDisbursementInput(**base, amount=Decimal("2000")))
    assert info.value.non_retryable
    assert info.value.type == "IdempotencyConflict"


def test_concurrent_posts_of_one_key_write_one_entry(sessions: SessionFactory) -> None:
    ledger = SqlLedger(sessions)
    barrier = threading.Barrier(6)

    def post() -> PostingResult:
        barrier.wait()
        return ledger.post(payout("race", "L9", "800.00"))

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: post(), range(6)))
    assert len({r.entry_id for r in results}) == 1
    assert sum(not r.already_posted for r in results) == 1
    assert row_counts(sessions) == (1, 2)
