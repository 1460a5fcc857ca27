"""Policy as data: every number of the rulebook is a parameter of a versioned policy.

A loan pins the whole policy it was applied under (the workflow carries the
snapshot), so a later policy file never changes a running loan.
"""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from domain.loan import CreditGrade


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
    max_term_months_long_cycle: int = Field(60, gt=0)  # E-10
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


class CalendarPolicy(_Section):
    """A-5: holidays and adjusted working days for years the calendar package lacks."""

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
