"""Policy as data: every number of the rulebook is a parameter of a versioned policy.

A loan pins the whole policy it was applied under (the workflow carries the
snapshot), so a later policy file never changes a running loan.
"""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from domain.loan import MAX_TERM_MONTHS, CreditGrade


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EligibilityPolicy(_Section):
    """Section A of the rulebook (准入)."""

    min_age: int = Field(18, ge=0)  # E-1
    max_age_plus_term: int = Field(60, gt=0)  # E-1
    min_residence_months: int = Field(12, ge=0)  # E-3: "over one year"
    min_credit_score: int = Field(60, ge=0, le=100)  # E-4
    rating_valid_days: int = Field(365, gt=0)  # E-4
    grade_floors: dict[CreditGrade, int] = Field(  # E-4, lower bound inclusive
        default_factory=lambda: {
            CreditGrade.AAA: 90,
            CreditGrade.AA: 80,
            CreditGrade.A: 70,
            CreditGrade.BBB: 60,
            CreditGrade.BB: 50,
            CreditGrade.B: 40,
        }
    )
    min_amount: Decimal = Field(Decimal("1000"), gt=0)  # E-9
    max_amount: Decimal = Field(Decimal("200000"), gt=0)  # E-9
    max_income_ratio: Decimal = Field(Decimal("0.5"), gt=0, le=1)  # E-9
    # E-9 credit lines: 一级 AAA, 二级 AA, 三级 A, 四级 BBB and below.
    credit_line_by_grade: dict[CreditGrade, Decimal] = Field(
        default_factory=lambda: {
            CreditGrade.AAA: Decimal("15000"),
            CreditGrade.AA: Decimal("10000"),
            CreditGrade.A: Decimal("5000"),
            CreditGrade.BBB: Decimal("0"),
            CreditGrade.BB: Decimal("0"),
            CreditGrade.B: Decimal("0"),
            CreditGrade.C: Decimal("0"),
        }
    )
    min_term_months: int = Field(6, gt=0)  # E-10
    max_term_months: int = Field(36, gt=0)  # E-10
    max_term_months_long_cycle: int = Field(60, gt=0, le=MAX_TERM_MONTHS)  # E-10
    min_grade_for_credit_loan: CreditGrade = CreditGrade.A  # E-11
    group_min_members: int = Field(3, ge=2)  # E-12
    short_term_max_months: int = Field(12, gt=0)  # E-14: the boundary between method families
    split_window_days: int = Field(90, gt=0)  # E-15

    @model_validator(mode="after")
    def _ranges(self) -> EligibilityPolicy:
        if self.min_amount > self.max_amount:
            raise ValueError("min_amount must not exceed max_amount")
        if self.min_term_months > self.max_term_months:
            raise ValueError("min_term_months must not exceed max_term_months")
        if self.max_term_months > self.max_term_months_long_cycle:
            raise ValueError("max_term_months must not exceed max_term_months_long_cycle")
        missing = set(CreditGrade) - set(self.credit_line_by_grade)
        if missing:
            raise ValueError(f"credit_line_by_grade lacks {sorted(missing)}")
        return self


class InvestigationPolicy(_Section):
    """Section B (贷前调查)."""

    investigation_tolerance: Decimal = Field(Decimal("0.20"), ge=0, le=1)  # I-5


class ApprovalPolicy(_Section):
    """Section C (审查, 审批)."""

    county_authority_limit: Decimal = Field(Decimal("50000"), gt=0)
    sla_working_days_returning: int = Field(3, gt=0)
    sla_working_days_new: int = Field(7, gt=0)
    sla_extra_working_days_remote: int = Field(3, ge=0)


class ContractPolicy(_Section):
    """Section D (签约, 发放)."""

    signing_window_days: int = Field(30, gt=0)  # C-1


class InterestPolicy(_Section):
    """P-1 (the rest of section E comes with post-loan management)."""

    day_count_basis: int = Field(360, gt=0)  # P-1: daily rate = annual / 360
    min_annual_rate: Decimal = Field(Decimal("0.0300"), gt=0)  # pricing band of the institution
    max_annual_rate: Decimal = Field(Decimal("0.1800"), gt=0)

    @model_validator(mode="after")
    def _band(self) -> InterestPolicy:
        if self.min_annual_rate > self.max_annual_rate:
            raise ValueError("min_annual_rate must not exceed max_annual_rate")
        return self


AllocationBucket = Literal[
    "penalty_interest",
    "overdue_interest",
    "overdue_principal",
    "current_interest",
    "current_principal",
]
DEFAULT_ALLOCATION: tuple[AllocationBucket, ...] = (
    "penalty_interest",
    "overdue_interest",
    "overdue_principal",
    "current_interest",
    "current_principal",
)


class RepaymentPolicy(_Section):
    """Section E after disbursement (还款): P-2..P-7."""

    interest_reminder_days: int = Field(5, ge=0)  # P-3
    maturity_notice_days_short: int = Field(10, ge=0)  # P-3: terms <= 12 months
    maturity_notice_days_long: int = Field(30, ge=0)  # P-3: longer terms
    penalty_rate_multiplier: Decimal = Field(Decimal("1.5"), ge=1)  # P-5: on overdue principal
    # P-5: unpaid interest compounds; PBOC practice charges it at the penalty rate.
    compound_rate_multiplier: Decimal = Field(Decimal("1.5"), ge=1)
    prepayment_fee_rate: Decimal = Field(Decimal("0"), ge=0, lt=1)  # P-4: of the amount prepaid
    prepayment_needs_consent: bool = True  # P-4
    allocation_order: list[AllocationBucket] = Field(  # P-6
        default_factory=lambda: list(DEFAULT_ALLOCATION)
    )

    @model_validator(mode="after")
    def _every_bucket_once(self) -> RepaymentPolicy:
        if (
            sorted(self.allocation_order) != sorted(set(self.allocation_order))
            or len(self.allocation_order) != 5
        ):
            raise ValueError("allocation_order must name each of the five buckets once")
        return self


class InspectionPolicy(_Section):
    """Section F (贷后检查): K-1..K-4."""

    first_check_days: int = Field(15, gt=0)  # K-1
    business_interval_months: int = Field(3, gt=0)  # K-2: production/business loans
    consumer_lump_sum_interval_months: int = Field(6, gt=0)  # K-2
    micro_credit_interval_months: int = Field(6, gt=0)  # K-2: by village
    # K-3: the longest interval a grade allows (AAA/AA, A/BBB, BB and below or ungraded).
    max_interval_days_top_grades: int = Field(180, gt=0)
    max_interval_days_middle_grades: int = Field(90, gt=0)
    max_interval_days_low_grades: int = Field(60, gt=0)
    max_interval_days_substandard: int = Field(30, gt=0)  # K-3: 次级 and 可疑 every month
    # The institution's choice: a routine check's task opens this many days before it is due.
    task_lead_days: int = Field(10, ge=0)


class WarningPolicy(_Section):
    """Section G (风险预警): W-2 deadlines (institution's choice; the rulebook sets none)."""

    response_working_days: int = Field(5, gt=0)
    escalation_working_days: int = Field(10, gt=0)


class CollectionPolicy(_Section):
    """Section H (逾期, 催收): D-1..D-3."""

    first_reminder_working_days: int = Field(5, gt=0)  # D-1: 1 installment / <= 30 days
    second_band_max_days: int = Field(60, gt=0)  # D-1: 31-60 days is the second rung
    first_band_max_days: int = Field(30, gt=0)
    # D-1 gives no deadline for the visit and the on-site rung: the institution's choice.
    visit_working_days: int = Field(10, gt=0)
    overdue_notice_days: int = Field(15, gt=0)  # D-2
    renotice_months_individual: int = Field(6, gt=0)  # D-3
    renotice_months_company: int = Field(3, gt=0)  # D-3
    receipt_wait_days: int = Field(30, gt=0)  # D-3


class ClassificationPolicy(_Section):
    """Section I (五级分类, 信用等级): F-1, F-2."""

    special_mention_max_dpd: int = Field(90, gt=0)  # F-1: 1-90 关注
    substandard_max_dpd: int = Field(180, gt=0)  # F-1: 91-180 次级
    doubtful_max_dpd: int = Field(360, gt=0)  # F-1: 181-360 可疑; beyond, 损失
    score_overdue_30_90: int = Field(-15, le=0)  # F-2 (the rulebook's -10 to -20)
    score_overdue_over_90: int = Field(-50, le=0)  # F-2: or 次级
    score_doubtful_or_loss: int = Field(-60, le=0)  # F-2
    score_purpose_changed: int = Field(-15, le=0)  # F-2
    score_funds_to_third_party: int = Field(-30, le=0)  # F-2
    no_upgrade_years_third_party: int = Field(2, ge=0)  # F-2
    no_grading_years_crime: int = Field(5, ge=0)  # F-2

    @model_validator(mode="after")
    def _bands(self) -> ClassificationPolicy:
        if not self.special_mention_max_dpd < self.substandard_max_dpd < self.doubtful_max_dpd:
            raise ValueError("days-past-due bands must increase")
        return self


class ExtensionPolicy(_Section):
    """Section J (展期): X-1, X-3, X-7."""

    extension_request_days: int = Field(15, ge=0)
    short_term_max_months: int = Field(12, gt=0)  # up to this, at most the original term
    medium_term_max_months: int = Field(60, gt=0)  # up to this, at most half of it
    long_extension_max_months: int = Field(36, gt=0)  # beyond, at most 3 years
    max_extensions: int = Field(1, ge=0)


class CalendarPolicy(_Section):
    """A-5: single dates off or worked, over whatever source a year's calendar came from."""

    extra_holidays: list[date] = Field(default_factory=list)
    extra_workdays: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _disjoint(self) -> CalendarPolicy:
        both = set(self.extra_holidays) & set(self.extra_workdays)
        if both:
            raise ValueError(f"dates both holiday and workday: {sorted(both)}")
        return self


class Policy(_Section):
    """One version of the institution's lending policy."""

    version: str = Field(min_length=1)
    effective_from: date
    institution: str = Field(min_length=1)
    eligibility: EligibilityPolicy = Field(default_factory=EligibilityPolicy)
    investigation: InvestigationPolicy = Field(default_factory=InvestigationPolicy)
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    contract: ContractPolicy = Field(default_factory=ContractPolicy)
    interest: InterestPolicy = Field(default_factory=InterestPolicy)
    calendar: CalendarPolicy = Field(default_factory=CalendarPolicy)
    # Post-loan management. A policy file without these sections gets the rulebook's
    # defaults, so loans pinned before they existed read the same numbers.
    repayment: RepaymentPolicy = Field(default_factory=RepaymentPolicy)
    inspection: InspectionPolicy = Field(default_factory=InspectionPolicy)
    warning: WarningPolicy = Field(default_factory=WarningPolicy)
    collection: CollectionPolicy = Field(default_factory=CollectionPolicy)
    classification: ClassificationPolicy = Field(default_factory=ClassificationPolicy)
    extension: ExtensionPolicy = Field(default_factory=ExtensionPolicy)


class PolicyFileError(Exception):
    """A policy file that cannot be used; the message names the file and the bad keys."""


def load_policy(path: Path) -> Policy:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PolicyFileError(f"policy file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(f"policy file {path} is not valid TOML: {exc}") from exc
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(f"key '{key}': {err['msg']}")
        raise PolicyFileError(f"policy file {path} is invalid: " + "; ".join(problems)) from exc
