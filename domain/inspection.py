"""Post-loan inspection (贷后检查) and warning signals (风险预警): rules K-1..K-5, W-1, W-2.

Dates only: the workflow turns them into timed tasks.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from domain.calendar import WorkingCalendar
from domain.eligibility import grade_at_least, is_production_or_business
from domain.loan import (
    Comment,
    CreditGrade,
    GuaranteeType,
    HouseholdId,
    LoanClass,
    PersonName,
    Purpose,
    RepaymentMethod,
    ShortText,
)
from domain.policy import InspectionPolicy, WarningPolicy
from domain.schedule import add_months

# 农户小额信用贷款 are farm loans: these purposes, under a credit (信用) guarantee.
FARM_PURPOSES = frozenset(
    {Purpose.CROP, Purpose.FORESTRY, Purpose.LIVESTOCK, Purpose.FISHERY, Purpose.FARM_MACHINERY}
)
# K-2 "installments" means principal repaid in instalments; the rest repay it in one sum.
INSTALLMENT_METHODS = frozenset(
    {RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL}
)
# K-3: these classes are checked every month whatever the grade.
MONTHLY_CLASSES = frozenset({LoanClass.SUBSTANDARD, LoanClass.DOUBTFUL, LoanClass.LOSS})


class InspectionKind(StrEnum):
    """Which K-1/K-2 row a loan follows."""

    BUSINESS = "business"  # production/business loans (生产经营)
    CONSUMER = "consumer"  # 消费贷款
    MICRO_CREDIT = "micro_credit"  # 农户小额信用贷款


def inspection_kind(purpose: Purpose, guarantee_type: GuaranteeType) -> InspectionKind:
    """The loan's inspection regime (K-1, K-2).

    Farm micro credit (农户小额信用贷款) is read as a credit (信用, unsecured) loan for
    farm production: crop, forestry, livestock, fishery or small farm machinery. A
    credit loan for non-farm business is a business loan; any consumption loan is
    consumer whatever its guarantee.
    """
    if guarantee_type is GuaranteeType.CREDIT and purpose in FARM_PURPOSES:
        return InspectionKind.MICRO_CREDIT
    if is_production_or_business(purpose):
        return InspectionKind.BUSINESS
    return InspectionKind.CONSUMER


def first_check_due(
    disbursed_on: date, kind: InspectionKind, policy: InspectionPolicy
) -> date | None:
    """Rule K-1: business loans within ``first_check_days`` calendar days of payout;
    micro credit and consumer loans have no first check."""
    if kind is InspectionKind.BUSINESS:
        return disbursed_on + timedelta(days=policy.first_check_days)
    return None


def grade_cap_days(
    grade: CreditGrade | None, loan_class: LoanClass, policy: InspectionPolicy
) -> int:
    """Rule K-3: the longest interval between checks, in days.

    AAA/AA 180, A/BBB 90, BB and below or ungraded 60; 次级, 可疑 (and 损失) monthly.
    """
    if grade is None or not grade_at_least(grade, CreditGrade.BBB):
        days = policy.max_interval_days_low_grades
    elif grade_at_least(grade, CreditGrade.AA):
        days = policy.max_interval_days_top_grades
    else:
        days = policy.max_interval_days_middle_grades
    if loan_class in MONTHLY_CLASSES:
        days = min(days, policy.max_interval_days_substandard)
    return days


def next_routine_check(
    last_check_or_disbursed_on: date,
    kind: InspectionKind,
    method: RepaymentMethod,
    grade: CreditGrade | None,
    loan_class: LoanClass,
    paid_on_time: bool,
    policy: InspectionPolicy,
) -> date | None:
    """The next routine check: the earlier of the K-2 interval and the K-3 cap.

    K-2: business every 3 months, micro credit and consumer lump-sum every 6. A consumer
    loan repaid in instalments and paid on time has none (the repayment record serves),
    unless its class is 次级 or worse (K-3: monthly). A consumer instalment loan not paid
    on time is read as the lump-sum row. Months count with ``add_months``.
    """
    last = last_check_or_disbursed_on
    if kind is InspectionKind.CONSUMER and method in INSTALLMENT_METHODS and paid_on_time:
        if loan_class in MONTHLY_CLASSES:
            return last + timedelta(days=policy.max_interval_days_substandard)
        return None
    months = {
        InspectionKind.BUSINESS: policy.business_interval_months,
        InspectionKind.CONSUMER: policy.consumer_lump_sum_interval_months,
        InspectionKind.MICRO_CREDIT: policy.micro_credit_interval_months,
    }[kind]
    by_kind = add_months(last, months)
    by_grade = last + timedelta(days=grade_cap_days(grade, loan_class, policy))
    return min(by_kind, by_grade)


def special_check_due(arrears_on: date) -> date:
    """Rule K-4: arrears of interest or an overdue amount call for a special check at once."""
    return arrears_on


# --- K-2 village batches ---


class VillageItem(BaseModel):
    """One household's micro-credit loan due for a routine check (K-2)."""

    model_config = ConfigDict(extra="forbid")

    loan_id: str
    village: ShortText
    household_id: HouseholdId
    borrower_name: PersonName
    due_on: date


def village_batches(items: list[VillageItem]) -> dict[str, list[VillageItem]]:
    """Rule K-2: one task per village, listing its households in household order.

    Villages come in sorted order, so the same loans always make the same tasks.
    """
    batches: dict[str, list[VillageItem]] = {}
    for item in sorted(items, key=lambda i: (i.village, i.household_id, i.loan_id)):
        batches.setdefault(item.village, []).append(item)
    return batches


def batch_due(items: list[VillageItem]) -> date:
    """A village task is due when its earliest household is."""
    if not items:
        raise ValueError("a village batch needs at least one household")
    return min(item.due_on for item in items)


# --- K-5 findings, W-1 signals, W-2 measures ---


class WarningSignal(StrEnum):
    """Rule W-1 warning signals (预警信号)."""

    OVERDUE_OR_ARREARS = "overdue_or_arrears"  # 逾期, 欠息
    MISUSE_OF_FUNDS = "misuse_of_funds"  # 挪用贷款
    DEATH_ILLNESS_INCAPACITY = "death_illness_incapacity"  # 死亡, 重病, 丧失行为能力
    MOVED_OR_OUT_OF_CONTACT = "moved_or_out_of_contact"  # 外出务工, 失联
    LAWSUIT = "lawsuit"  # 涉诉
    GRADE_DOWNGRADE = "grade_downgrade"  # 信用等级下调
    GUARANTEE_WEAKENED = "guarantee_weakened"  # 担保人或抵押物风险
    NATURAL_DISASTER = "natural_disaster"  # 自然灾害
    DEBTS_ELSEWHERE = "debts_elsewhere"  # 他行债务


class WarningMeasure(StrEnum):
    """Rule W-2 measures a branch head may take on a signal."""

    DEMAND_CORRECTION = "demand_correction"  # 限期纠正
    ADD_GUARANTEE_OR_COLLATERAL = "add_guarantee_or_collateral"  # 追加担保
    STOP_UNDRAWN_CREDIT = "stop_undrawn_credit"  # 停止发放未用额度
    CALL_IN_EARLY = "call_in_early"  # 提前收回


class InspectionFindings(BaseModel):
    """What a check records (rule K-5, 贷后检查报告)."""

    model_config = ConfigDict(extra="forbid")

    purpose_kept: bool
    business_normal: bool
    household_income: Comment = Field(min_length=1)
    # Several lines, as they always could be: loans carry such findings across runs.
    health: Comment = Field(min_length=1)
    marriage: Comment = Field(min_length=1)
    contact_details_current: bool
    signals: list[WarningSignal] = Field(default_factory=list, max_length=len(WarningSignal))
    notes: Comment = ""


def signals_from_findings(findings: InspectionFindings) -> list[WarningSignal]:
    """Rule K-5: the W-1 signals a check raises, each once, in ``WarningSignal`` order.

    Purpose not kept is misuse of funds; contact details not current is out of contact;
    plus the signals the officer names.
    """
    raised = set(findings.signals)
    if not findings.purpose_kept:
        raised.add(WarningSignal.MISUSE_OF_FUNDS)
    if not findings.contact_details_current:
        raised.add(WarningSignal.MOVED_OR_OUT_OF_CONTACT)
    return [signal for signal in WarningSignal if signal in raised]


def calls_loan_in(findings: InspectionFindings) -> bool:
    """Rule K-5: misuse of funds → the loan is called in (提前收回)."""
    return WarningSignal.MISUSE_OF_FUNDS in signals_from_findings(findings)


def signal_deadlines(
    raised_on: date, calendar: WorkingCalendar, policy: WarningPolicy
) -> tuple[date, date]:
    """Rule W-2: (the head's response deadline, the escalation deadline), both counted
    in working days from the day the signal was raised."""
    return (
        calendar.add_working_days(raised_on, policy.response_working_days),
        calendar.add_working_days(raised_on, policy.escalation_working_days),
    )
