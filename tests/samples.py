"""Sample loans and staff shared by the workflow and API tests (not by the domain tests)."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from typing import Any

from domain.ids import make_resident_id
from domain.loan import (
    Actor,
    ContractSigning,
    Decision,
    DecisionOutcome,
    InvestigationReport,
    LoanApplication,
    Review,
    ReviewOutcome,
    Role,
    Tier,
)

_households = itertools.count(1)


def application_data(today: date, **overrides: Any) -> dict[str, Any]:
    """A clean application as JSON-ready data: a 40-year-old farmer, 30 000 yuan, 12 months.

    Each call gets a new household so tests never trip over each other's E-7 claims.
    """
    n = next(_households)
    birth = date(today.year - 40, 3, 15)
    data: dict[str, Any] = {
        "applicant": {
            "name": "张大山",
            "id_number": make_resident_id("410102", birth, f"{n % 1000:03d}"),
            "birth_date": birth.isoformat(),
            "phone": "13812345678",
            "household_id": f"HH-{today:%Y%m%d}-{n:05d}",
            "village": "前进村",
            "resident_months": 240,
            "fixed_residence": True,
            "full_civil_capacity": True,
            "remote_area": False,
            "settlement_account": "6228480012345678",
        },
        "household_annual_income": "120000",
        "amount": "30000",
        "term_months": 12,
        "purpose": "livestock",
        "repayment_method": "interest_monthly",
        "guarantee_type": "guarantee",
        "guarantors": [
            {
                "name": "李四",
                "id_number": make_resident_id("410102", date(today.year - 45, 6, 1), "271"),
                "phone": "13987654321",
                "household_id": f"HH-G-{n:05d}",
            }
        ],
        "credit_rating": {"score": 85, "rated_on": today.isoformat()},
        "materials": [
            "id_card",
            "household_register",
            "income_proof",
            "business_proof",
            "credit_record",
        ],
    }
    for key, value in overrides.items():
        if key in data["applicant"]:
            data["applicant"][key] = value
        else:
            data[key] = value
    return data


def application(today: date, **overrides: Any) -> LoanApplication:
    return LoanApplication.model_validate(application_data(today, **overrides))


def actor(username: str) -> Actor:
    """Staff as the development seed defines them (api/services/users.py)."""
    staff = {
        "officer1": (Role.LOAN_OFFICER, "CB01", None, None, None),
        "officer2": (Role.LOAN_OFFICER, "CB01", None, None, "HH-STAFF-0002"),
        "officer3": (Role.LOAN_OFFICER, "CB02", None, None, None),
        "reviewer1": (Role.REVIEWER, "CB01", None, None, None),
        "approver1": (Role.APPROVER, "CB01", Tier.COUNTY, Decimal("50000"), None),
        "approver2": (Role.APPROVER, "CB01", Tier.COUNTY, Decimal("20000"), None),
        "head1": (Role.BRANCH_HEAD, "CB01", None, None, None),
        "pref_reviewer": (Role.REVIEWER, "PF01", None, None, None),
        "pref_approver": (Role.APPROVER, "PF01", Tier.PREFECTURE, Decimal("200000"), None),
        "manager1": (Role.POST_LOAN_MANAGER, "CB01", None, None, None),
        "teller1": (Role.TELLER, "CB01", None, None, None),
    }
    role, branch, tier, limit, household = staff[username]
    return Actor(
        username=username,
        name=username,
        role=role,
        branch=branch,
        tier=tier,
        approval_limit=limit,
        household_id=household,
    )


def report_data(
    recommendation: str = "approve", amount: str = "30000", term_months: int = 12
) -> dict[str, Any]:
    return {
        "materials_genuine": True,
        "household_assets_and_credit": "砖瓦房一处，存栏生猪40头，无不良记录",
        "business_and_cash_flow": "养殖年净收入约6万元，现金流稳定",
        "purpose_legal": True,
        "repayment_ability_and_willingness": "还款能力和意愿良好",
        "guarantor_assessment": "保证人务工收入稳定",
        "family_consent_recorded": True,
        "interview_confirmed_by_borrower": True,
        "recommendation": recommendation,
        "amount": amount,
        "term_months": term_months,
        "annual_rate": "0.0720",
    }


def report(**kwargs: Any) -> InvestigationReport:
    return InvestigationReport.model_validate(report_data(**kwargs))


def forward(comment: str = "材料齐全，同意上报") -> Review:
    return Review(outcome=ReviewOutcome.FORWARD, comment=comment)


def approve(
    amount: str = "30000", term_months: int = 12, conditions: list[str] | None = None
) -> Decision:
    return Decision(
        outcome=DecisionOutcome.APPROVE,
        amount=Decimal(amount),
        term_months=term_months,
        annual_rate=Decimal("0.0720"),
        conditions=conditions or [],
    )


def signing(signed_on: date, conditions: list[str] | None = None) -> ContractSigning:
    return ContractSigning(
        contract_number="HT-2026-0001",
        signed_on=signed_on,
        guarantee_contracts_signed=True,
        conditions_met=conditions or [],
    )
