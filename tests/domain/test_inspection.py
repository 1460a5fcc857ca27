"""Post-loan inspection and warning signals: rules K-1..K-5, W-1, W-2."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from adapters.calendar import official_year
from domain.calendar import WorkingCalendar
from domain.inspection import (
    InspectionFindings,
    InspectionKind,
    VillageItem,
    WarningSignal,
    batch_due,
    calls_loan_in,
    first_check_due,
    grade_cap_days,
    inspection_kind,
    next_routine_check,
    signal_deadlines,
    signals_from_findings,
    special_check_due,
    village_batches,
)
from domain.loan import CreditGrade, GuaranteeType, LoanClass, Purpose, RepaymentMethod
from domain.policy import CalendarPolicy

from .conftest import POLICY

RULES = POLICY.inspection
BUSINESS, CONSUMER, MICRO = (
    InspectionKind.BUSINESS,
    InspectionKind.CONSUMER,
    InspectionKind.MICRO_CREDIT,
)
LUMP = RepaymentMethod.LUMP_SUM
INSTALLMENTS = RepaymentMethod.EQUAL_INSTALLMENT
N, SM, SUB, DBT, LOSS = list(LoanClass)
MON = date(2026, 3, 16)


# --- kinds ---


@pytest.mark.parametrize(
    ("purpose", "guarantee", "kind"),
    [
        (Purpose.CROP, GuaranteeType.CREDIT, MICRO),
        (Purpose.FARM_MACHINERY, GuaranteeType.CREDIT, MICRO),
        (Purpose.LIVESTOCK, GuaranteeType.GUARANTEE, BUSINESS),
        (Purpose.TRADE, GuaranteeType.CREDIT, BUSINESS),
        (Purpose.EDUCATION, GuaranteeType.CREDIT, CONSUMER),
        (Purpose.HOUSE_REPAIR, GuaranteeType.MORTGAGE, CONSUMER),
    ],
)
def test_k2_inspection_kind(
    purpose: Purpose, guarantee: GuaranteeType, kind: InspectionKind
) -> None:
    assert inspection_kind(purpose, guarantee) is kind


# --- K-1 ---


def test_k1_business_first_check_within_15_days() -> None:
    # 2026-03-16 + 15 days = 2026-03-31.
    assert first_check_due(MON, BUSINESS, RULES) == date(2026, 3, 31)


def test_k1_micro_credit_and_consumer_skip_it() -> None:
    assert first_check_due(MON, MICRO, RULES) is None
    assert first_check_due(MON, CONSUMER, RULES) is None


# --- K-3 ---


@pytest.mark.parametrize(
    ("grade", "days"),
    [
        (CreditGrade.AAA, 180),
        (CreditGrade.AA, 180),
        (CreditGrade.A, 90),
        (CreditGrade.BBB, 90),
        (CreditGrade.BB, 60),
        (CreditGrade.C, 60),
        (None, 60),
    ],
)
def test_k3_cap_by_grade(grade: CreditGrade | None, days: int) -> None:
    assert grade_cap_days(grade, N, RULES) == days
    assert grade_cap_days(grade, SM, RULES) == days  # 关注 changes nothing


@pytest.mark.parametrize("cls", [SUB, DBT, LOSS])
def test_k3_substandard_and_worse_monthly(cls: LoanClass) -> None:
    assert grade_cap_days(CreditGrade.AAA, cls, RULES) == 30
    assert grade_cap_days(None, cls, RULES) == 30


# --- K-2 with K-3 ---


def test_k2_business_every_three_months() -> None:
    # AA: 3 months from 01-31 is 04-30 (clamped); the 180-day cap (07-30) is later.
    assert next_routine_check(
        date(2026, 1, 31), BUSINESS, LUMP, CreditGrade.AA, N, True, RULES
    ) == date(2026, 4, 30)


def test_k3_low_grade_shortens_the_business_interval() -> None:
    # BB: 3 months -> 06-16, but 60 days from 03-16 is 05-15 (15 to 03-31, 45 to 04-30).
    assert next_routine_check(MON, BUSINESS, LUMP, CreditGrade.BB, N, True, RULES) == date(
        2026, 5, 15
    )
    assert next_routine_check(MON, BUSINESS, LUMP, None, N, True, RULES) == date(2026, 5, 15)


def test_k2_micro_credit_every_six_months_cap_wins_by_a_day() -> None:
    # 6 months from 01-01 is 07-01, 181 days; AAA's 180-day cap gives 06-30.
    assert next_routine_check(
        date(2026, 1, 1), MICRO, LUMP, CreditGrade.AAA, N, True, RULES
    ) == date(2026, 6, 30)
    # A: 90 days from 01-01 -> 04-01 (30 to 01-31, 58 to 02-28, 89 to 03-31).
    assert next_routine_check(date(2026, 1, 1), MICRO, LUMP, CreditGrade.A, N, True, RULES) == date(
        2026, 4, 1
    )


def test_k2_consumer_lump_sum_six_months() -> None:
    # 6 months from 03-16 is 09-16 (184 days); AAA's 180 days is 09-12.
    assert next_routine_check(MON, CONSUMER, LUMP, CreditGrade.AAA, N, True, RULES) == date(
        2026, 9, 12
    )
    # Interest monthly repays principal in one sum: the lump-sum row.
    assert next_routine_check(
        MON, CONSUMER, RepaymentMethod.INTEREST_MONTHLY, CreditGrade.AAA, N, True, RULES
    ) == date(2026, 9, 12)


def test_k2_consumer_installments_paid_on_time_none() -> None:
    assert next_routine_check(MON, CONSUMER, INSTALLMENTS, CreditGrade.BB, N, True, RULES) is None
    assert (
        next_routine_check(MON, CONSUMER, RepaymentMethod.EQUAL_PRINCIPAL, None, SM, True, RULES)
        is None
    )


def test_k3_consumer_installments_substandard_still_monthly() -> None:
    # 03-16 + 30 days = 04-15.
    assert next_routine_check(
        MON, CONSUMER, INSTALLMENTS, CreditGrade.AAA, SUB, True, RULES
    ) == date(2026, 4, 15)


def test_k2_consumer_installments_not_paid_on_time_read_as_lump_sum() -> None:
    # BBB: 90 days from 03-16 -> 06-14 (15, 45, 76 to 05-31, 90).
    assert next_routine_check(
        MON, CONSUMER, INSTALLMENTS, CreditGrade.BBB, SM, False, RULES
    ) == date(2026, 6, 14)


def test_k3_substandard_business_monthly() -> None:
    assert next_routine_check(MON, BUSINESS, LUMP, CreditGrade.AAA, SUB, False, RULES) == date(
        2026, 4, 15
    )


# --- K-4 ---


def test_k4_special_check_at_once() -> None:
    assert special_check_due(date(2026, 10, 1)) == date(2026, 10, 1)


# --- K-2 village batches ---


def item(loan: str, village: str, household: str, due: date) -> VillageItem:
    return VillageItem(
        loan_id=loan, village=village, household_id=household, borrower_name="王五", due_on=due
    )


def test_k2_one_task_per_village_households_sorted() -> None:
    items = [
        item("L3", "李家村", "HH-0300", date(2026, 7, 1)),
        item("L1", "张家村", "HH-0200", date(2026, 6, 30)),
        item("L2", "李家村", "HH-0100", date(2026, 7, 3)),
        item("L4", "张家村", "HH-0050", date(2026, 7, 2)),
    ]
    batches = village_batches(items)
    assert list(batches) == sorted(["李家村", "张家村"])
    assert [i.household_id for i in batches["李家村"]] == ["HH-0100", "HH-0300"]
    assert [i.household_id for i in batches["张家村"]] == ["HH-0050", "HH-0200"]
    assert batch_due(batches["李家村"]) == date(2026, 7, 1)
    assert batch_due(batches["张家村"]) == date(2026, 6, 30)


def test_k2_village_batches_empty() -> None:
    assert village_batches([]) == {}
    with pytest.raises(ValueError):
        batch_due([])


# --- K-5 findings and W-1 signals ---


def findings(**overrides: object) -> InspectionFindings:
    data: dict[str, object] = {
        "purpose_kept": True,
        "business_normal": True,
        "household_income": "种植收入约6万元",
        "health": "良好",
        "marriage": "已婚",
        "contact_details_current": True,
        **overrides,
    }
    return InspectionFindings.model_validate(data)


def test_k5_clean_check_raises_nothing() -> None:
    f = findings()
    assert signals_from_findings(f) == []
    assert not calls_loan_in(f)


def test_k5_derived_and_explicit_signals_once_in_order() -> None:
    f = findings(
        purpose_kept=False,
        contact_details_current=False,
        signals=[WarningSignal.LAWSUIT, WarningSignal.MISUSE_OF_FUNDS, WarningSignal.LAWSUIT],
    )
    assert signals_from_findings(f) == [
        WarningSignal.MISUSE_OF_FUNDS,
        WarningSignal.MOVED_OR_OUT_OF_CONTACT,
        WarningSignal.LAWSUIT,
    ]
    assert calls_loan_in(f)


def test_k5_misuse_named_explicitly_calls_in() -> None:
    assert calls_loan_in(findings(signals=[WarningSignal.MISUSE_OF_FUNDS]))
    assert not calls_loan_in(findings(signals=[WarningSignal.NATURAL_DISASTER]))


def test_k5_findings_must_be_recorded() -> None:
    with pytest.raises(ValidationError):
        findings(health="  ")


# --- W-2 ---


def test_w2_deadlines_in_working_days() -> None:
    cal = WorkingCalendar(CalendarPolicy(), resolve=official_year)
    # Mon 03-16: +5 -> Mon 03-23 (over the weekend); +10 -> Mon 03-30.
    assert signal_deadlines(MON, cal, POLICY.warning) == (date(2026, 3, 23), date(2026, 3, 30))


def test_w2_deadlines_across_national_day_2026() -> None:
    cal = WorkingCalendar(CalendarPolicy(), resolve=official_year)
    # Wed 09-30; 10-01..07 off; 08 (1), 09 (2), Sat 10 adjusted (3), 12 (4), 13 (5);
    # 14 (6), 15 (7), 16 (8), 19 (9), 20 (10).
    assert signal_deadlines(date(2026, 9, 30), cal, POLICY.warning) == (
        date(2026, 10, 13),
        date(2026, 10, 20),
    )
