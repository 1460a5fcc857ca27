"""Prepayment (提前还款), partial and full, rule P-4, checked to the cent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.loan import RepaymentMethod
from domain.policy import Policy, RepaymentPolicy
from domain.prepayment import prepay
from domain.schedule import build_schedule
from tests.domain.conftest import POLICY

D = Decimal
RATE = D("0.072")
EQUAL = RepaymentMethod.EQUAL_INSTALLMENT
# 10 000 at 7.2% over 12 months from 2026-01-31 (see test_schedule): 866.42 a month;
# after three installments (the last on 2026-04-30) 7 564.00 is outstanding.
LOAN = build_schedule(D("10000"), RATE, 12, EQUAL, date(2026, 1, 31))
AFTER_3 = D("7564.00")
AS_OF = date(2026, 5, 15)  # 15 days after 04-30: 7 564 × 0.072 × 15 / 360 = 22.692 -> 22.69


def with_repayment(**values: object) -> Policy:
    return Policy(
        version="t",
        effective_from=date(2026, 1, 1),
        institution="x",
        repayment=RepaymentPolicy.model_validate(values),
    )


FEE_1PCT = with_repayment(prepayment_fee_rate="0.01")


def test_p4_loan_fixture() -> None:
    assert LOAN[2].remaining_principal == AFTER_3


def test_p4_full_prepayment_lump_sum_by_hand() -> None:
    # 利随本清 50 000 at 6% from 2026-03-16 to 2026-09-16; repaid on 2026-06-16:
    # 92 days (15 + 30 + 31 + 16): 50 000 × 0.06 × 92 / 360 = 766.666… -> 766.67
    lines = build_schedule(D("50000"), D("0.06"), 6, RepaymentMethod.LUMP_SUM, date(2026, 3, 16))
    quote = prepay(
        lines,
        0,
        date(2026, 6, 16),
        D("50000"),
        D("50766.67"),
        D("0.06"),
        RepaymentMethod.LUMP_SUM,
        POLICY,
    )
    assert quote.full
    assert quote.interest_to_date == D("766.67")
    assert quote.fee == D("0.00")
    assert quote.principal_prepaid == D("50000")
    assert quote.total_due == D("50766.67")
    assert quote.new_schedule == []
    assert quote.needs_consent


def test_p4_full_prepayment_with_a_one_percent_fee() -> None:
    # fee 50 000 × 1% = 500.00; total 50 000 + 766.67 + 500.00 = 51 266.67
    lines = build_schedule(D("50000"), D("0.06"), 6, RepaymentMethod.LUMP_SUM, date(2026, 3, 16))
    args = (lines, 0, date(2026, 6, 16), D("50000"))
    quote = prepay(*args, D("51266.67"), D("0.06"), RepaymentMethod.LUMP_SUM, FEE_1PCT)
    assert (quote.full, quote.fee, quote.total_due) == (True, D("500.00"), D("51266.67"))
    # a cent short of that is a partial prepayment, not a full one
    short = prepay(*args, D("51266.66"), D("0.06"), RepaymentMethod.LUMP_SUM, FEE_1PCT)
    # 50 499.99 after interest: 49 999.99 principal + 500.00 fee (499.9999 rounds up)
    assert (short.full, short.principal_prepaid, short.fee) == (False, D("49999.99"), D("500.00"))


def test_p4_full_prepayment_of_an_installment_loan_takes_only_what_is_owed() -> None:
    # 7 564.00 + 22.69 = 7 586.69; the rest of 8 000 is not part of the quote
    quote = prepay(LOAN, 3, AS_OF, AFTER_3, D("8000"), RATE, EQUAL, POLICY)
    assert quote.full
    assert quote.interest_to_date == D("22.69")
    assert quote.principal_prepaid == AFTER_3
    assert quote.total_due == D("7586.69")


def test_p4_partial_prepayment_of_a_twelve_month_equal_installment_loan() -> None:
    # 3 000 pays 22.69 interest, then 2 977.31 principal: 7 564 − 2 977.31 = 4 586.69 left.
    quote = prepay(LOAN, 3, AS_OF, AFTER_3, D("3000"), RATE, EQUAL, POLICY)
    assert not quote.full
    assert quote.interest_to_date == D("22.69")
    assert quote.fee == D("0.00")
    assert quote.principal_prepaid == D("2977.31")
    assert quote.total_due == D("3000.00")
    new = quote.new_schedule
    assert [i.number for i in new] == list(range(4, 13))
    assert [i.due_date for i in new] == [i.due_date for i in LOAN[3:]]  # same maturity
    assert sum(i.principal for i in new) == D("4586.69")
    assert new[-1].remaining_principal == D("0.00")
    # the first period runs from the prepayment: 16 days on 4 586.69 -> 14.677 -> 14.68
    assert (new[0].days, new[0].interest) == (16, D("14.68"))
    assert all(i.payment == D("523.81") for i in new)  # lower than 866.42
    for line in new:
        assert line.payment == line.principal + line.interest


def test_p4_partial_prepayment_pays_the_fee_on_the_principal_prepaid() -> None:
    # 2 977.31 after interest buys p with p + 1% of p: p = 2 977.31 / 1.01 = 2 947.83,
    # fee 29.4783 -> 29.48; 2 947.83 + 29.48 = 2 977.31 exactly.
    quote = prepay(LOAN, 3, AS_OF, AFTER_3, D("3000"), RATE, EQUAL, FEE_1PCT)
    assert (quote.principal_prepaid, quote.fee, quote.total_due) == (
        D("2947.83"),
        D("29.48"),
        D("3000.00"),
    )
    assert sum(i.principal for i in quote.new_schedule) == D("4616.17")  # 7 564 − 2 947.83


def test_p4_partial_prepayment_of_a_lump_sum_by_hand() -> None:
    # 20 766.67 on 2026-06-16 pays 766.67 interest and 20 000 principal; 30 000 runs on to
    # 2026-09-16 (92 days): 30 000 × 0.06 × 92 / 360 = 460.00
    lines = build_schedule(D("50000"), D("0.06"), 6, RepaymentMethod.LUMP_SUM, date(2026, 3, 16))
    quote = prepay(
        lines,
        0,
        date(2026, 6, 16),
        D("50000"),
        D("20766.67"),
        D("0.06"),
        RepaymentMethod.LUMP_SUM,
        POLICY,
    )
    assert quote.principal_prepaid == D("20000.00")
    [line] = quote.new_schedule
    assert (line.number, line.due_date, line.days) == (1, date(2026, 9, 16), 92)
    assert (line.principal, line.interest, line.payment) == (
        D("30000.00"),
        D("460.00"),
        D("30460.00"),
    )


def test_p4_interest_runs_from_disbursement_in_the_first_period() -> None:
    # 2026-01-31 .. 2026-02-10 is 10 days: 10 000 × 0.072 × 10 / 360 = 20.00
    quote = prepay(LOAN, 0, date(2026, 2, 10), D("10000"), D("1020"), RATE, EQUAL, POLICY)
    assert quote.interest_to_date == D("20.00")
    assert quote.principal_prepaid == D("1000.00")
    assert [i.number for i in quote.new_schedule] == list(range(1, 13))


def test_p4_a_second_partial_prepayment_runs_from_the_first() -> None:
    # After the first (on 05-15) the schedule is the settled lines plus the new ones;
    # five days later interest runs from 05-15 on 4 586.69: × 0.072 × 5 / 360 = 4.58669 -> 4.59
    first = prepay(LOAN, 3, AS_OF, AFTER_3, D("3000"), RATE, EQUAL, POLICY)
    schedule = LOAN[:3] + first.new_schedule
    second = prepay(schedule, 3, date(2026, 5, 20), D("4586.69"), D("1004.59"), RATE, EQUAL, POLICY)
    assert second.interest_to_date == D("4.59")
    assert second.principal_prepaid == D("1000.00")
    assert sum(i.principal for i in second.new_schedule) == D("3586.69")


def test_p4_consent_follows_the_policy() -> None:
    policy = with_repayment(prepayment_needs_consent=False)
    quote = prepay(LOAN, 3, AS_OF, AFTER_3, D("3000"), RATE, EQUAL, policy)
    assert not quote.needs_consent


def test_p4_refuses_amounts_that_are_not_positive_cents() -> None:
    for bad in (D("0"), D("-100"), D("100.001")):
        with pytest.raises(ValueError):
            prepay(LOAN, 3, AS_OF, AFTER_3, bad, RATE, EQUAL, POLICY)


def test_p4_refuses_an_amount_that_only_covers_interest() -> None:
    with pytest.raises(ValueError, match="interest to date 22.69"):
        prepay(LOAN, 3, AS_OF, AFTER_3, D("22.69"), RATE, EQUAL, POLICY)
    # a cent more prepays a cent (its 1% fee rounds to 0.00)
    quote = prepay(LOAN, 3, AS_OF, AFTER_3, D("22.70"), RATE, EQUAL, FEE_1PCT)
    assert (quote.principal_prepaid, quote.fee) == (D("0.01"), D("0.00"))


def test_p4_refuses_a_date_before_the_last_settled_due_date() -> None:
    with pytest.raises(ValueError, match="before the period start 2026-04-30"):
        prepay(LOAN, 3, date(2026, 4, 29), AFTER_3, D("3000"), RATE, EQUAL, POLICY)
    # on the last settled due date itself: no interest yet
    quote = prepay(LOAN, 3, date(2026, 4, 30), AFTER_3, D("3000"), RATE, EQUAL, POLICY)
    assert quote.interest_to_date == D("0.00")


def test_p4_refuses_a_date_on_or_after_the_next_due_date() -> None:
    # installment 4 falls due on 05-31: it is debited and settled first (P-2, P-6)
    with pytest.raises(ValueError, match="installment 4"):
        prepay(LOAN, 3, date(2026, 5, 31), AFTER_3, D("3000"), RATE, EQUAL, POLICY)


def test_p4_refuses_a_settled_loan_or_a_bad_count() -> None:
    for paid_through in (-1, 12):
        with pytest.raises(ValueError):
            prepay(LOAN, paid_through, AS_OF, AFTER_3, D("3000"), RATE, EQUAL, POLICY)
