"""Repayment schedules (还款计划): rules P-1, E-14 and C-4, checked to the cent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.loan import Installment, RepaymentMethod
from domain.schedule import (
    add_months,
    build_schedule,
    maturity_date,
    period_interest,
    schedule_totals,
)

D = Decimal
START = date(2026, 1, 31)  # a month end, so every clamping case shows


def rows(lines: list[Installment]) -> list[tuple[object, ...]]:
    return [
        (i.number, i.due_date, i.days, i.principal, i.interest, i.payment, i.remaining_principal)
        for i in lines
    ]


# --- dates ---


def test_c4_add_months_clamps_and_stays_anchored() -> None:
    assert add_months(START, 1) == date(2026, 2, 28)
    assert add_months(START, 2) == date(2026, 3, 31)  # anchored on the 31st, not on Feb 28
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)  # leap year
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    assert add_months(date(2026, 5, 20), 0) == date(2026, 5, 20)
    assert add_months(date(2026, 5, 20), 24) == date(2028, 5, 20)


def test_c4_maturity_date() -> None:
    assert maturity_date(START, 12) == date(2027, 1, 31)
    assert maturity_date(date(2026, 8, 31), 6) == date(2027, 2, 28)


# --- P-1 interest ---


def test_p1_period_interest_actual_over_360() -> None:
    # 50 000 × 6% × 184 / 360 = 1 533.333… -> 1 533.33
    assert period_interest(D("50000"), D("0.06"), 184, 360) == D("1533.33")


def test_p1_period_interest_rounds_half_up() -> None:
    # 100 × 1.8% × 1 / 360 = 0.005 -> 0.01 (banker's rounding would give 0.00)
    assert period_interest(D("100"), D("0.018"), 1, 360) == D("0.01")
    # 100 × 1.8% × 1 / 365 = 0.00493… -> 0.00
    assert period_interest(D("100"), D("0.018"), 1, 365) == D("0.00")


# --- one hand-computed example per method ---
# P = 10 000 at 7.2%: daily interest on the full principal is 10 000 × 0.072 / 360 = 2.00,
# so a period of n days on the full principal costs 2n yuan.


def test_c4_lump_sum_by_hand() -> None:
    # 利随本清: 50 000 at 6% for 6 months from 2026-03-16: due 2026-09-16, 184 days,
    # interest 50 000 × 0.06 × 184 / 360 = 1 533.33.
    lines = build_schedule(D("50000"), D("0.06"), 6, RepaymentMethod.LUMP_SUM, date(2026, 3, 16))
    assert rows(lines) == [
        (1, date(2026, 9, 16), 184, D("50000.00"), D("1533.33"), D("51533.33"), D("0.00"))
    ]


def test_c4_interest_monthly_by_hand() -> None:
    # 按月结息: Feb has 28 days -> 56.00, Mar 31 -> 62.00, Apr 30 -> 60.00 …;
    # the year 2026-01-31 .. 2027-01-31 has 365 days -> 730.00 interest in all.
    lines = build_schedule(D("10000"), D("0.072"), 12, RepaymentMethod.INTEREST_MONTHLY, START)
    assert len(lines) == 12
    assert rows(lines)[:3] == [
        (1, date(2026, 2, 28), 28, D("0.00"), D("56.00"), D("56.00"), D("10000.00")),
        (2, date(2026, 3, 31), 31, D("0.00"), D("62.00"), D("62.00"), D("10000.00")),
        (3, date(2026, 4, 30), 30, D("0.00"), D("60.00"), D("60.00"), D("10000.00")),
    ]
    assert rows(lines)[-1] == (
        12,
        date(2027, 1, 31),
        31,
        D("10000.00"),
        D("62.00"),
        D("10062.00"),
        D("0.00"),
    )
    assert schedule_totals(lines) == (D("10000.00"), D("730.00"), D("10730.00"))


def test_c4_interest_quarterly_by_hand_with_short_last_period() -> None:
    # 按季结息, 7 months: quarters end 04-30 (28+31+30 = 89 days -> 178.00) and
    # 07-31 (31+30+31 = 92 days -> 184.00); maturity 08-31 (31 days -> 62.00).
    lines = build_schedule(D("10000"), D("0.072"), 7, RepaymentMethod.INTEREST_QUARTERLY, START)
    assert rows(lines) == [
        (1, date(2026, 4, 30), 89, D("0.00"), D("178.00"), D("178.00"), D("10000.00")),
        (2, date(2026, 7, 31), 92, D("0.00"), D("184.00"), D("184.00"), D("10000.00")),
        (3, date(2026, 8, 31), 31, D("10000.00"), D("62.00"), D("10062.00"), D("0.00")),
    ]


def test_c4_interest_quarterly_twelve_months_has_four_payments() -> None:
    lines = build_schedule(D("10000"), D("0.072"), 12, RepaymentMethod.INTEREST_QUARTERLY, START)
    assert [i.due_date for i in lines] == [
        date(2026, 4, 30),
        date(2026, 7, 31),
        date(2026, 10, 31),
        date(2027, 1, 31),
    ]
    assert schedule_totals(lines) == (D("10000.00"), D("730.00"), D("10730.00"))


def test_c4_equal_installment_two_months_by_hand() -> None:
    # 等额本息 1 000 at 12%, interest by actual days / 360 (P-1), so the level payment A is
    # solved on the schedule: after A in month 1 the rest plus its interest is A again.
    # 1: 31 days (03-01 .. 04-01): 1000 × 0.12 × 31 / 360 = 10.333 -> 10.33.
    # 2: 30 days: (1010.33 − A) × (1 + 0.12 × 30 / 360) = A -> A = 1020.4333 / 2.01 = 507.68.
    # Check: principal 507.68 − 10.33 = 497.35, remaining 502.65; 502.65 × 0.01 = 5.0265
    # -> 5.03; the last repays 502.65 + 5.03 = 507.68.
    lines = build_schedule(
        D("1000"), D("0.12"), 2, RepaymentMethod.EQUAL_INSTALLMENT, date(2026, 3, 1)
    )
    assert rows(lines) == [
        (1, date(2026, 4, 1), 31, D("497.35"), D("10.33"), D("507.68"), D("502.65")),
        (2, date(2026, 5, 1), 30, D("502.65"), D("5.03"), D("507.68"), D("0.00")),
    ]


def test_c4_equal_installment_twelve_months_by_hand() -> None:
    # A = 866.42 (solved as above; the 30-day textbook figure 866.19 would leave the last
    # payment 2.74 higher). 1: 28 days -> 56.00 interest, principal 810.42, remaining
    # 9 189.58. 2: 31 days: 9 189.58 × 0.072 × 31 / 360 = 56.9754 -> 56.98, principal 809.44.
    # 12: 31 days on 860.98: 5.338 -> 5.34; payment 866.32, within cents of the others.
    lines = build_schedule(D("10000"), D("0.072"), 12, RepaymentMethod.EQUAL_INSTALLMENT, START)
    assert rows(lines)[:2] == [
        (1, date(2026, 2, 28), 28, D("810.42"), D("56.00"), D("866.42"), D("9189.58")),
        (2, date(2026, 3, 31), 31, D("809.44"), D("56.98"), D("866.42"), D("8380.14")),
    ]
    assert all(i.payment == D("866.42") for i in lines[:-1])
    assert rows(lines)[-1] == (
        12,
        date(2027, 1, 31),
        31,
        D("860.98"),
        D("5.34"),
        D("866.32"),
        D("0.00"),
    )
    assert schedule_totals(lines) == (D("10000.00"), D("396.94"), D("10396.94"))


def test_c4_equal_installment_last_payment_only_absorbs_rounding() -> None:
    # 100 000 over 36 months: the last payment differs from the level one by cents, not
    # by the ~157 yuan that a 30-day monthly rate would leave under actual-day interest.
    lines = build_schedule(D("100000"), D("0.072"), 36, RepaymentMethod.EQUAL_INSTALLMENT, START)
    level = lines[0].payment
    assert all(i.payment == level for i in lines[:-1])
    assert abs(lines[-1].payment - level) <= D("0.36")  # at most a cent per period


def test_c4_equal_principal_by_hand() -> None:
    # 等额本金: 10 000 / 12 = 833.33 each; the 12th repays 10 000 − 11 × 833.33 = 833.37.
    # 1: 28 days on 10 000 -> 56.00. 2: 9 166.67 × 0.0062 = 56.8334 -> 56.83.
    # 12: 833.37 × 0.0062 = 5.1669 -> 5.17.
    lines = build_schedule(D("10000"), D("0.072"), 12, RepaymentMethod.EQUAL_PRINCIPAL, START)
    assert rows(lines)[:2] == [
        (1, date(2026, 2, 28), 28, D("833.33"), D("56.00"), D("889.33"), D("9166.67")),
        (2, date(2026, 3, 31), 31, D("833.33"), D("56.83"), D("890.16"), D("8333.34")),
    ]
    assert rows(lines)[-1] == (
        12,
        date(2027, 1, 31),
        31,
        D("833.37"),
        D("5.17"),
        D("838.54"),
        D("0.00"),
    )
    principal, interest, payment = schedule_totals(lines)
    assert principal == D("10000.00")
    assert payment == principal + interest


def test_c4_zero_rate_equal_installment() -> None:
    lines = build_schedule(D("1000"), D("0"), 3, RepaymentMethod.EQUAL_INSTALLMENT, START)
    # the least level payment after which the last is no larger
    assert [i.payment for i in lines] == [D("333.34"), D("333.34"), D("333.32")]


def test_c4_refuses_impossible_inputs() -> None:
    with pytest.raises(ValueError):
        build_schedule(D("0"), D("0.06"), 12, RepaymentMethod.LUMP_SUM, START)
    with pytest.raises(ValueError):
        build_schedule(D("100.001"), D("0.06"), 12, RepaymentMethod.LUMP_SUM, START)
    with pytest.raises(ValueError):
        build_schedule(D("1000"), D("0.06"), 0, RepaymentMethod.LUMP_SUM, START)
    with pytest.raises(ValueError):
        build_schedule(D("1000"), D("-0.01"), 12, RepaymentMethod.LUMP_SUM, START)


# --- invariants over many loans ---


def test_c4_p1_invariants_over_many_loans() -> None:
    """Sum of principals == P exactly; payment == principal + interest on every line."""
    amounts = [D("1000"), D("1234.56"), D("9999.99"), D("30000"), D("77777.77"), D("200000")]
    terms = [1, 2, 3, 5, 6, 7, 11, 12, 13, 24, 36, 60]
    rates = [D("0.03"), D("0.0725"), D("0.18")]
    starts = [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 16)]
    cents = D("0.01")
    checked = 0
    for method in RepaymentMethod:
        for principal in amounts:
            for term in terms:
                for rate in rates:
                    for start in starts:
                        lines = build_schedule(principal, rate, term, method, start)
                        total_p, total_i, total_pay = schedule_totals(lines)
                        assert total_p == principal
                        assert total_pay == total_p + total_i
                        assert lines[-1].due_date == maturity_date(start, term)
                        assert lines[-1].remaining_principal == 0
                        assert sum(i.days for i in lines) == (lines[-1].due_date - start).days
                        outstanding = principal
                        for line in lines:
                            assert line.payment == line.principal + line.interest
                            assert line.principal >= 0 and line.interest >= 0
                            outstanding -= line.principal
                            assert line.remaining_principal == outstanding
                            for value in (line.principal, line.interest, line.payment):
                                assert value == value.quantize(cents)
                                assert value.as_tuple().exponent == -2
                        checked += 1
    assert checked == 5 * 6 * 12 * 3 * 3
