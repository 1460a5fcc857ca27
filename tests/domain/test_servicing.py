"""The loan's account in servicing: billing (P-2), accrual (P-5), allocation (P-6), P-7."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from domain.allocation import allocate
from domain.loan import Bucket, Installment, LoanClass, RepaymentMethod
from domain.prepayment import prepay
from domain.servicing import (
    AccountAsOf,
    accrue_to,
    apply_payment,
    apply_prepayment,
    band_changes,
    bill_unpaid,
    call_in,
    dues,
    figures_on,
    open_book,
    standing_on,
)
from tests.domain.conftest import POLICY

D = Decimal
RATE = D("0.072")
ORDER = POLICY.repayment.allocation_order
START = date(2026, 12, 15)


def flat_schedule(n: int = 3) -> list[Installment]:
    """1 000 principal a month and 72.00 interest (12 000 × 0.072 × 30 / 360), by hand."""
    return [
        Installment(
            number=k,
            due_date=START + timedelta(days=30 * k),
            principal=D("1000.00"),
            interest=D("72.00"),
            payment=D("1072.00"),
            remaining_principal=D(3000 - 1000 * k),
            days=30,
        )
        for k in range(1, n + 1)
    ]


def test_p2_an_installment_paid_in_full_on_its_date() -> None:
    book = open_book(flat_schedule(), D("3000.00"), START)
    first = book.schedule[0]
    owed = dues(book, first)
    assert owed.total == D("1072.00")
    book = apply_payment(book, allocate(D("1072.00"), owed, ORDER), first)
    assert book.billed == 1
    assert book.overdue == []
    assert book.principal_outstanding == D("2000.00")
    assert book.repaid.interest == D("72.00")
    assert book.days_past_due(first.due_date + timedelta(days=5)) == 0


def test_p5_penalty_and_compound_interest_by_hand_to_the_cent() -> None:
    book = open_book(flat_schedule(), D("3000.00"), START)
    first = book.schedule[0]  # due 2027-01-14
    book = accrue_to(book, first.due_date, RATE, POLICY)
    book = bill_unpaid(book, first)
    assert book.arrears.overdue_principal == D("1000.00")
    assert book.arrears.overdue_interest == D("72.00")

    ten_days_later = first.due_date + timedelta(days=10)
    book = accrue_to(book, ten_days_later, RATE, POLICY)
    # 罚息 1 000 × 0.072 × 1.5 × 10 / 360 = 3.00; 复利 72 × 0.072 × 1.5 × 10 / 360 = 0.216
    assert book.penalty_interest == D("3.00")
    assert book.compound_interest == D("0.22")
    # Accruing to the same day again adds nothing.
    assert accrue_to(book, ten_days_later, RATE, POLICY) == book

    # P-6: 500 pays penalty and compound (3.22), overdue interest (72), then principal.
    owed = dues(book)
    paid = allocate(D("500.00"), owed, ORDER)
    assert paid.penalty_interest == D("3.22")
    assert paid.overdue_interest == D("72.00")
    assert paid.overdue_principal == D("424.78")
    book = apply_payment(book, paid)
    assert book.penalty_interest == D("0.00") and book.compound_interest == D("0.00")
    assert book.overdue[0].principal == D("575.22")
    assert book.overdue[0].interest == D("0.00")
    assert book.principal_outstanding == D("2575.22")

    # Ten more days on what is left: 575.22 × 0.072 × 1.5 × 10 / 360 = 1.72566 -> 1.73
    book = accrue_to(book, ten_days_later + timedelta(days=10), RATE, POLICY)
    assert book.penalty_interest == D("1.73")
    assert book.compound_interest == D("0.00")


def test_overdue_is_settled_oldest_installment_first() -> None:
    book = open_book(flat_schedule(), D("3000.00"), START)
    first, second, _ = book.schedule
    book = bill_unpaid(bill_unpaid(book, first), second)
    assert book.installments_overdue == 2
    assert book.oldest_unpaid_due == first.due_date
    # 1 144 = both interests (144) + the first installment's principal (1 000).
    book = apply_payment(book, allocate(D("1144.00"), dues(book), ORDER))
    assert [o.number for o in book.overdue] == [2]
    assert book.oldest_unpaid_due == second.due_date


def test_billing_out_of_order_is_refused() -> None:
    book = open_book(flat_schedule(), D("3000.00"), START)
    with pytest.raises(ValueError, match="not the next"):
        bill_unpaid(book, book.schedule[1])


def test_p7_settled_only_when_every_installment_is_billed_and_paid() -> None:
    book = open_book(flat_schedule(), D("3000.00"), START)
    for line in book.schedule:
        assert not book.settled
        book = apply_payment(book, allocate(line.payment, dues(book, line), ORDER), line)
    assert book.settled
    assert book.repaid.principal == D("3000.00")
    assert book.repaid.interest == D("216.00")


def test_f1_d4_standing_follows_days_past_due() -> None:
    book = open_book(flat_schedule(), D("3000.00"), START)
    first = book.schedule[0]
    book = bill_unpaid(book, first)
    due = first.due_date
    assert standing_on(book, due, None, False, POLICY).loan_class is LoanClass.NORMAL
    one = standing_on(book, due + timedelta(days=1), None, False, POLICY)
    assert (one.days_past_due, one.loan_class, one.bucket) == (
        1,
        LoanClass.SPECIAL_MENTION,
        Bucket.M1,
    )
    later = standing_on(book, due + timedelta(days=91), None, False, POLICY)
    assert (later.loan_class, later.bucket) == (LoanClass.SUBSTANDARD, Bucket.M3_PLUS)
    # an extended loan is at best 关注; F-1: a judgement only ever lowers.
    fresh = open_book(flat_schedule(), D("3000.00"), START)
    assert standing_on(fresh, due, None, True, POLICY).loan_class is LoanClass.SPECIAL_MENTION
    judged = standing_on(fresh, due, LoanClass.DOUBTFUL, False, POLICY)
    assert judged.loan_class is LoanClass.DOUBTFUL


def test_f3_band_changes_are_the_days_to_wake_on() -> None:
    book = open_book(flat_schedule(), D("3000.00"), START)
    assert band_changes(book, 0, POLICY) == []
    first = book.schedule[0]
    book = bill_unpaid(book, first)
    assert band_changes(book, 0, POLICY) == [1, 30, 31, 61, 91, 181, 361]
    assert band_changes(book, 45, POLICY) == [61, 91, 181, 361]


def test_k5_calling_in_makes_the_whole_balance_due_with_interest_to_date() -> None:
    book = open_book(flat_schedule(), D("3000.00"), START)
    first = book.schedule[0]
    book = apply_payment(book, allocate(first.payment, dues(book, first), ORDER), first)
    called_on = first.due_date + timedelta(days=10)
    book = call_in(book, called_on, RATE, POLICY)
    assert book.next_installment is None and book.called_in_on == called_on
    [called] = book.overdue
    # 2 000 not yet due, and its interest for the 10 days since the last due date:
    # 2 000 × 0.072 × 10 / 360 = 4.00
    assert (called.principal, called.interest, called.due_date) == (
        D("2000.00"),
        D("4.00"),
        called_on,
    )
    assert book.days_past_due(called_on + timedelta(days=1)) == 1
    assert book.penalty_interest == 0  # nothing was overdue before the call (P-5)
    paid = apply_payment(book, allocate(D("2004.00"), dues(book), ORDER))
    assert paid.settled


def test_k5_calling_in_accrues_what_was_already_overdue_first() -> None:
    book = open_book(flat_schedule(), D("3000.00"), START)
    first = book.schedule[0]
    book = bill_unpaid(accrue_to(book, first.due_date, RATE, POLICY), first)
    called_on = first.due_date + timedelta(days=10)
    book = call_in(book, called_on, RATE, POLICY)
    # Ten days on the first installment only: 3.00 penalty and 0.22 compound (as above).
    assert (book.penalty_interest, book.compound_interest) == (D("3.00"), D("0.22"))
    assert book.accrued_through == called_on
    assert [o.principal for o in book.overdue] == [D("1000.00"), D("2000.00")]


def test_p4_partial_then_full_prepayment_recomputes_the_schedule() -> None:
    book = open_book(flat_schedule(), D("3000.00"), START)
    first = book.schedule[0]
    book = apply_payment(book, allocate(first.payment, dues(book, first), ORDER), first)
    as_of = first.due_date + timedelta(days=15)
    # 1 000 brought in: 15 days of interest on 2 000 (2 000 × 0.072 × 15 / 360 = 6.00) first.
    quote = prepay(
        book.schedule,
        book.billed,
        as_of,
        book.principal_outstanding,
        D("1000.00"),
        RATE,
        RepaymentMethod.EQUAL_PRINCIPAL,
        POLICY,
    )
    assert (quote.interest_to_date, quote.principal_prepaid) == (D("6.00"), D("994.00"))
    book = apply_prepayment(book, quote)
    assert book.principal_outstanding == D("1006.00")
    assert [line.number for line in book.schedule] == [1, 2, 3]
    assert sum((line.principal for line in book.schedule[1:]), D("0")) == D("1006.00")
    # The rest, in full, on the next day: one day's interest on 1 006 (0.20) and done.
    rest = prepay(
        book.schedule,
        book.billed,
        as_of + timedelta(days=1),
        book.principal_outstanding,
        D("5000.00"),
        RATE,
        RepaymentMethod.EQUAL_PRINCIPAL,
        POLICY,
    )
    assert rest.full and rest.total_due == D("1006.20")
    book = apply_prepayment(book, rest)
    assert book.settled
    assert book.repaid.interest == D("72.00") + D("6.00") + D("0.20")


def test_p4_no_prepayment_over_arrears() -> None:
    book = open_book(flat_schedule(), D("3000.00"), START)
    book = bill_unpaid(book, book.schedule[0])
    quote = prepay(
        book.schedule,
        1,
        book.schedule[0].due_date + timedelta(days=1),
        D("2000.00"),
        D("500.00"),
        RATE,
        RepaymentMethod.EQUAL_PRINCIPAL,
        POLICY,
    )
    with pytest.raises(ValueError, match="P-6"):
        apply_prepayment(book, quote)


def _overdue_account(**changes: object) -> tuple[AccountAsOf, Installment]:
    """The first installment unpaid, the book as the workflow left it the day after."""
    book = open_book(flat_schedule(), D("3000.00"), START)
    first = book.schedule[0]
    book = bill_unpaid(accrue_to(book, first.due_date, RATE, POLICY), first)
    day_one = first.due_date + timedelta(days=1)
    book = accrue_to(book, day_one, RATE, POLICY)
    fields: dict[str, object] = {
        "as_of": day_one,
        "book": book,
        "annual_rate": RATE,
        "policy": POLICY,
        **changes,
    }
    return AccountAsOf.model_validate(fields), first


def test_figures_on_a_later_day_are_the_workflows_rules_on_that_day() -> None:
    account, first = _overdue_account()
    day = first.due_date + timedelta(days=45)
    figures = figures_on(account, day)
    # P-5 on the arrears, F-1 and D-4 on the days past due, exactly as accrue_to and
    # standing_on give them for that day.
    accrued = accrue_to(account.book, day, RATE, POLICY)
    assert (figures.penalty_interest, figures.compound_interest) == (
        accrued.penalty_interest,
        accrued.compound_interest,
    )
    assert figures.arrears == accrued.arrears.total
    assert (figures.on, figures.days_past_due, figures.loan_class, figures.bucket) == (
        day,
        45,
        LoanClass.SPECIAL_MENTION,
        Bucket.M2,
    )
    # Never before the account's own day: a reader's clock behind the workflow's.
    assert figures_on(account, START) == figures_on(account, account.as_of)
    assert figures_on(account, START).days_past_due == 1


def test_figures_keep_a_judged_class_and_an_extension_never_better_than_the_floor() -> None:
    account, first = _overdue_account(judged_class=LoanClass.DOUBTFUL)
    assert figures_on(account, first.due_date + timedelta(days=10)).loan_class is (
        LoanClass.DOUBTFUL
    )
    # F-1: past 90 days the floor is 次级 whatever a reviewer once judged better.
    account, first = _overdue_account(judged_class=LoanClass.SPECIAL_MENTION)
    assert figures_on(account, first.due_date + timedelta(days=91)).loan_class is (
        LoanClass.SUBSTANDARD
    )
    settled = open_book(flat_schedule(1), D("1000.00"), START)
    line = settled.schedule[0]
    settled = apply_payment(settled, allocate(line.payment, dues(settled, line), ORDER), line)
    extended = AccountAsOf(
        as_of=line.due_date, book=settled, annual_rate=RATE, extended=True, policy=POLICY
    )
    later = figures_on(extended, line.due_date + timedelta(days=30))
    assert (later.days_past_due, later.loan_class, later.arrears) == (
        0,
        LoanClass.SPECIAL_MENTION,
        D("0.00"),
    )


def test_figures_of_a_written_off_loan_accrue_nothing_more() -> None:
    account, first = _overdue_account(accruing=False)
    later = figures_on(account, first.due_date + timedelta(days=400))
    assert (later.penalty_interest, later.compound_interest) == (
        account.book.penalty_interest,
        account.book.compound_interest,
    )
    assert (later.days_past_due, later.loan_class) == (400, LoanClass.LOSS)
