"""Allocation of a payment (还款顺序), rule P-6."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.allocation import Allocation, Dues, allocate
from tests.domain.conftest import POLICY

D = Decimal
ORDER = POLICY.repayment.allocation_order

# Total 10.00 + 50.00 + 800.00 + 46.90 + 819.52 = 1 726.42
DUES = Dues(
    penalty_interest=D("10.00"),
    overdue_interest=D("50.00"),
    overdue_principal=D("800.00"),
    current_interest=D("46.90"),
    current_principal=D("819.52"),
)


def test_p6_dues_total() -> None:
    assert DUES.total == D("1726.42")


def test_p6_partial_payment_stops_in_the_middle_bucket() -> None:
    # 300 = 10 penalty + 50 overdue interest + 240 of the 800 overdue principal
    assert allocate(D("300.00"), DUES, ORDER) == Allocation(
        penalty_interest=D("10.00"),
        overdue_interest=D("50.00"),
        overdue_principal=D("240.00"),
    )


def test_p6_exact_payment_settles_everything() -> None:
    result = allocate(D("1726.42"), DUES, ORDER)
    assert result == Allocation(
        penalty_interest=D("10.00"),
        overdue_interest=D("50.00"),
        overdue_principal=D("800.00"),
        current_interest=D("46.90"),
        current_principal=D("819.52"),
        unapplied=D("0.00"),
    )
    assert result.applied == DUES.total


def test_p6_overpayment_leaves_the_rest_unapplied() -> None:
    # 2 000 − 1 726.42 = 273.58 stays in the settlement account
    result = allocate(D("2000"), DUES, ORDER)
    assert result.unapplied == D("273.58")
    assert result.current_principal == D("819.52")
    assert result.applied + result.unapplied == D("2000")


def test_p6_another_policy_order() -> None:
    # principal first (some institutions settle overdue principal before interest)
    order = [
        "overdue_principal",
        "overdue_interest",
        "penalty_interest",
        "current_principal",
        "current_interest",
    ]
    assert allocate(D("855.00"), DUES, order) == Allocation(
        overdue_principal=D("800.00"), overdue_interest=D("50.00"), penalty_interest=D("5.00")
    )


def test_p6_empty_buckets_are_skipped() -> None:
    dues = Dues(current_interest=D("46.90"), current_principal=D("819.52"))
    assert allocate(D("866.42"), dues, ORDER) == Allocation(
        current_interest=D("46.90"), current_principal=D("819.52")
    )


def test_p6_refuses_bad_payments() -> None:
    for bad in (D("0"), D("-1.00"), D("10.001")):
        with pytest.raises(ValueError):
            allocate(bad, DUES, ORDER)


def test_p6_refuses_an_order_without_every_bucket_once() -> None:
    with pytest.raises(ValueError):
        allocate(D("100"), DUES, ORDER[:4])
    with pytest.raises(ValueError):
        allocate(D("100"), DUES, [*ORDER[:4], ORDER[0]])


def test_p6_dues_are_never_negative() -> None:
    with pytest.raises(ValueError):
        Dues(current_interest=D("-0.01"))
