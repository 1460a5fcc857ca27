"""Interest by actual days (P-1) and penalty and compound interest (P-5), to the cent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.accrual import Arrears, accrue, interest_between
from domain.policy import Policy, RepaymentPolicy
from tests.domain.conftest import POLICY

D = Decimal
RATE = D("0.072")


def test_p5_penalty_on_overdue_principal_by_hand() -> None:
    # 罚息: 10 000 × 0.072 × 1.5 × 31 / 360 = 1 080 × 31 / 360 = 93.00
    after = accrue(Arrears(overdue_principal=D("10000.00")), RATE, 31, POLICY)
    assert after.penalty_interest == D("93.00")
    assert after.compound_interest == D("0.00")
    assert after.overdue_principal == D("10000.00")


def test_p5_compound_on_unpaid_interest_by_hand() -> None:
    # 复利: 600 × 0.072 × 1.5 × 31 / 360 = 64.8 × 31 / 360 = 5.58
    after = accrue(Arrears(overdue_interest=D("600.00")), RATE, 31, POLICY)
    assert after.compound_interest == D("5.58")
    assert after.penalty_interest == D("0.00")


def test_p5_both_together_and_the_total() -> None:
    arrears = Arrears(overdue_principal=D("10000.00"), overdue_interest=D("600.00"))
    after = accrue(arrears, RATE, 31, POLICY)
    # 10 000 + 600 + 93.00 + 5.58
    assert after.total == D("10698.58")
    assert arrears.total == D("10600.00")  # the input is not changed


def test_p5_rounds_half_up() -> None:
    # 150 × 0.072 × 1.5 × 1 / 360 = 0.045 -> 0.05 (banker's rounding would give 0.04)
    after = accrue(Arrears(overdue_principal=D("150.00")), RATE, 1, POLICY)
    assert after.penalty_interest == D("0.05")


def test_p5_rounds_once_per_period_not_per_day() -> None:
    # 150 × 0.072 × 1.5 × 10 / 360 = 0.45 exactly; ten daily roundings would give 0.50.
    after = accrue(Arrears(overdue_principal=D("150.00")), RATE, 10, POLICY)
    assert after.penalty_interest == D("0.45")


def test_p5_periods_add_up() -> None:
    # 31 days -> 93.00, then 30 more days on the same arrears: 1 080 × 30 / 360 = 90.00
    first = accrue(Arrears(overdue_principal=D("10000.00")), RATE, 31, POLICY)
    second = accrue(first, RATE, 30, POLICY)
    assert second.penalty_interest == D("183.00")


def test_p5_penalty_does_not_compound() -> None:
    # only overdue contract interest compounds; 93.00 of penalty accrues nothing itself
    arrears = Arrears(penalty_interest=D("93.00"), compound_interest=D("5.58"))
    assert accrue(arrears, RATE, 30, POLICY) == arrears


def test_p5_multipliers_and_basis_from_the_policy() -> None:
    policy = Policy(
        version="t",
        effective_from=date(2026, 1, 1),
        institution="x",
        repayment=RepaymentPolicy(
            penalty_rate_multiplier=D("1.3"), compound_rate_multiplier=D("1.0")
        ),
    )
    arrears = Arrears(overdue_principal=D("10000.00"), overdue_interest=D("600.00"))
    after = accrue(arrears, RATE, 31, policy)
    # 10 000 × 0.072 × 1.3 × 31 / 360 = 936 × 31 / 360 = 80.60
    assert after.penalty_interest == D("80.60")
    # 600 × 0.072 × 1.0 × 31 / 360 = 43.2 × 31 / 360 = 3.72
    assert after.compound_interest == D("3.72")


def test_p5_zero_days_changes_nothing_and_negative_days_are_refused() -> None:
    arrears = Arrears(overdue_principal=D("10000.00"))
    assert accrue(arrears, RATE, 0, POLICY) == arrears
    with pytest.raises(ValueError):
        accrue(arrears, RATE, -1, POLICY)


def test_p5_arrears_are_never_negative() -> None:
    with pytest.raises(ValueError):
        Arrears(overdue_principal=D("-1.00"))


def test_p1_interest_between_by_actual_days() -> None:
    # 2026-01-31 .. 2026-03-03 is 31 days: 10 000 × 0.072 × 31 / 360 = 62.00
    assert interest_between(D("10000"), RATE, date(2026, 1, 31), date(2026, 3, 3), 360) == D(
        "62.00"
    )
    # on a 365 basis: 10 000 × 0.072 × 31 / 365 = 61.150… -> 61.15
    assert interest_between(D("10000"), RATE, date(2026, 1, 31), date(2026, 3, 3), 365) == D(
        "61.15"
    )
    assert interest_between(D("10000"), RATE, date(2026, 3, 3), date(2026, 3, 3), 360) == D("0.00")


def test_p1_interest_between_refuses_a_backward_period() -> None:
    with pytest.raises(ValueError):
        interest_between(D("10000"), RATE, date(2026, 3, 3), date(2026, 3, 2), 360)
