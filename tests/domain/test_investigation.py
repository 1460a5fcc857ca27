"""Pre-loan investigation, rules I-1, I-2, I-3 and I-5 (贷前调查)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.investigation import check_report, discrepancies
from domain.loan import InvestigationReport
from tests.domain.conftest import POLICY, sample_application

TOLERANCE = POLICY.investigation


def make_report(**overrides: Any) -> InvestigationReport:
    data: dict[str, Any] = {
        "materials_genuine": True,
        "household_assets_and_credit": "五口之家，砖房一栋，无不良记录",
        "business_and_cash_flow": "种植蔬菜大棚6亩，年净收入约8万元",
        "purpose_legal": True,
        "repayment_ability_and_willingness": "收入稳定，还款意愿强",
        "guarantor_assessment": "保证人李四经营农机，收入稳定",
        "family_consent_recorded": True,
        "interview_confirmed_by_borrower": True,
        "recommendation": "approve",
        "amount": Decimal("30000.00"),
        "term_months": 12,
        "annual_rate": Decimal("0.065"),
        **overrides,
    }
    return InvestigationReport.model_validate(data)


def test_complete_report_passes() -> None:
    assert check_report(make_report(), sample_application()) == []


def test_i1_refuses_interview_not_confirmed_by_borrower() -> None:
    [refusal] = check_report(
        make_report(interview_confirmed_by_borrower=False), sample_application()
    )
    assert refusal.rule == "I-1"
    assert refusal.field == "report.interview_confirmed_by_borrower"


def test_i3_refuses_missing_family_consent() -> None:
    [refusal] = check_report(make_report(family_consent_recorded=False), sample_application())
    assert refusal.rule == "I-3"
    assert refusal.field == "report.family_consent_recorded"


def test_i2_guarantee_loan_needs_guarantor_assessment() -> None:
    [refusal] = check_report(make_report(guarantor_assessment=""), sample_application())
    assert refusal.rule == "I-2"
    assert refusal.field == "report.guarantor_assessment"


def test_i2_group_loan_needs_guarantor_assessment() -> None:
    app = sample_application(
        guarantee_type="group",
        guarantors=[],
        group_members=[
            {"name": "甲", "household_id": "HH-1001"},
            {"name": "乙", "household_id": "HH-1002"},
        ],
    )
    [refusal] = check_report(make_report(guarantor_assessment="  "), app)
    assert refusal.field == "report.guarantor_assessment"


def test_i2_secured_loan_needs_collateral_assessment() -> None:
    app = sample_application(guarantee_type="mortgage", guarantors=[])
    [refusal] = check_report(make_report(guarantor_assessment=""), app)
    assert refusal.rule == "I-2"
    assert refusal.field == "report.collateral_assessment"
    ok = make_report(
        guarantor_assessment="", collateral_assessment="农房产权清晰，位于村口，易变现"
    )
    assert check_report(ok, app) == []


def test_i2_credit_loan_needs_neither_assessment() -> None:
    app = sample_application(guarantee_type="credit", guarantors=[], amount=Decimal("5000"))
    assert check_report(make_report(guarantor_assessment="", amount=Decimal("5000")), app) == []


def test_i2_reduce_must_lower_amount_or_term() -> None:
    app = sample_application()
    [refusal] = check_report(make_report(recommendation="reduce"), app)
    assert refusal.rule == "I-2"
    assert refusal.field == "report.recommendation"
    assert check_report(make_report(recommendation="reduce", amount=Decimal("20000")), app) == []
    assert check_report(make_report(recommendation="reduce", term_months=9), app) == []


def test_i2_proposal_may_not_exceed_request() -> None:
    refusals = check_report(
        make_report(amount=Decimal("30000.01"), term_months=18), sample_application()
    )
    assert [(r.rule, r.field) for r in refusals] == [
        ("I-2", "report.amount"),
        ("I-2", "report.term_months"),
    ]
    assert "30,000.01" in refusals[0].message


def test_i2_refuses_lending_on_false_materials_or_an_illegal_purpose() -> None:
    report = make_report(materials_genuine=False, purpose_legal=False)
    refusals = check_report(report, sample_application())
    assert [(r.rule, r.field) for r in refusals] == [
        ("I-2", "report.materials_genuine"),
        ("I-2", "report.purpose_legal"),
    ]


def test_i2_a_rejection_may_record_false_materials() -> None:
    report = make_report(
        materials_genuine=False, recommendation="reject", amount=None, term_months=None
    )
    assert check_report(report, sample_application()) == []


def test_i2_reject_needs_no_terms() -> None:
    report = make_report(recommendation="reject", amount=None, term_months=None, annual_rate=None)
    assert check_report(report, sample_application()) == []


def test_i5_agreeing_reports_have_no_discrepancy() -> None:
    assert discrepancies(make_report(), make_report(), TOLERANCE) == []


def test_i5_different_recommendations_flagged() -> None:
    second = make_report(recommendation="reject", amount=None, term_months=None, annual_rate=None)
    [line] = discrepancies(make_report(), second, TOLERANCE)
    assert line == "recommendations differ: first report approve, second report reject"


def test_i5_amounts_exactly_20_percent_apart_not_flagged() -> None:
    # |30 000 - 25 000| / 25 000 = 0.20 (on the smaller), not more than the tolerance.
    second = make_report(amount=Decimal("25000.00"))
    assert discrepancies(make_report(), second, TOLERANCE) == []


def test_i5_amounts_more_than_20_percent_apart_flagged() -> None:
    # |30 000 - 24 999.99| / 24 999.99 = 0.2000005.
    second = make_report(recommendation="reduce", amount=Decimal("24999.99"))
    lines = discrepancies(make_report(), second, TOLERANCE)
    assert lines[0] == "recommendations differ: first report approve, second report reduce"
    assert lines[1] == (
        "proposed amounts differ by 20.0% (more than the 20% tolerance): 30,000.00 vs 24,999.99"
    )
    wide = discrepancies(make_report(amount=Decimal("10000")), make_report(), TOLERANCE)
    assert wide == [
        "proposed amounts differ by 200.0% (more than the 20% tolerance): 10,000.00 vs 30,000.00"
    ]


def test_i5_different_terms_flagged() -> None:
    [line] = discrepancies(make_report(), make_report(term_months=9), TOLERANCE)
    assert line == "proposed terms differ: 12 months vs 9 months"
