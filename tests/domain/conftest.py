"""Shared builders for the pure domain tests: a sample application, policy and actors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from domain.ids import make_resident_id
from domain.loan import Actor, LoanApplication, Material, Role, Tier
from domain.policy import Policy

TODAY = date(2026, 3, 16)  # a Monday
BIRTH = date(1980, 5, 20)
APPLICANT_ID = make_resident_id("410105", BIRTH, "123")
GUARANTOR_ID = make_resident_id("410105", date(1975, 2, 3), "456")

# The rulebook defaults, identical to policy/loanflow-2026.1.toml.
POLICY = Policy(
    version="test", effective_from=date(2026, 1, 1), institution="示范县农村信用合作联社"
)


def sample_application(**overrides: Any) -> LoanApplication:
    """A valid guaranteed crop loan of 30 000 yuan for 12 months, interest monthly.

    ``applicant`` and ``credit_rating`` overrides given as dicts are merged into the
    defaults, so ``sample_application(applicant={"resident_months": 6})`` works.
    """
    data: dict[str, Any] = {
        "applicant": {
            "name": "张三",
            "id_number": APPLICANT_ID,
            "birth_date": BIRTH,
            "phone": "13812345678",
            "household_id": "HH-0001",
            "village": "李家村",
            "resident_months": 240,
            "fixed_residence": True,
            "full_civil_capacity": True,
            "settlement_account": "6228480012345678",
        },
        "household_annual_income": Decimal("80000.00"),
        "amount": Decimal("30000.00"),
        "term_months": 12,
        "purpose": "crop",
        "repayment_method": "interest_monthly",
        "guarantee_type": "guarantee",
        "guarantors": [
            {
                "name": "李四",
                "id_number": GUARANTOR_ID,
                "phone": "13998765432",
                "household_id": "HH-0002",
            }
        ],
        "credit_rating": {"score": 85, "rated_on": date(2025, 12, 1)},
        "materials": list(Material),
    }
    for key, value in overrides.items():
        if key in ("applicant", "credit_rating") and isinstance(value, dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return LoanApplication.model_validate(data)


def group_member(n: int, **overrides: Any) -> dict[str, Any]:
    return {
        "name": f"成员{'甲乙丙丁戊己庚辛'[n % 8]}",
        "household_id": f"HH-10{n:02d}",
        **overrides,
    }


def actor(**overrides: Any) -> Actor:
    """A county approver with a 50 000 yuan limit."""
    data: dict[str, Any] = {
        "username": "wang.approver",
        "name": "王审批",
        "role": Role.APPROVER,
        "branch": "示范县支行",
        "tier": Tier.COUNTY,
        "approval_limit": Decimal("50000"),
        "household_id": "HH-9001",
        **overrides,
    }
    return Actor.model_validate(data)
