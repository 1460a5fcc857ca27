"""Review, tiered approval and signing: rules A-1..A-5, C-1, C-2 (and P-1's rate band)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from adapters.calendar import official_year
from domain.approval import (
    approval_tier,
    check_decision,
    check_separation,
    check_signing,
    decision_deadline,
    decision_stages,
    signing_deadline,
    sla_working_days,
    tier_at_least,
)
from domain.calendar import WorkingCalendar
from domain.errors import Refusal, ViolationKind
from domain.loan import ContractSigning, Decision, Role, Stage, Tier
from domain.policy import CalendarPolicy
from tests.domain.conftest import POLICY, actor, sample_application

CALENDAR = WorkingCalendar(CalendarPolicy(), resolve=official_year)


def approve(**overrides: Any) -> Decision:
    data: dict[str, Any] = {
        "outcome": "approve",
        "amount": Decimal("30000.00"),
        "term_months": 12,
        "annual_rate": Decimal("0.065"),
        **overrides,
    }
    return Decision.model_validate(data)


def rules_of(refusals: list[Refusal]) -> list[str]:
    return [r.rule for r in refusals]


# --- A-1 separation of duties ---


def separation(**overrides: Any) -> list[Refusal]:
    return check_separation(
        overrides.pop("who", actor()),
        borrower_household_id=overrides.pop("household", "HH-0001"),
        investigators=overrides.pop("investigators", {"li.officer", "zhao.officer"}),
        reviewers=overrides.pop("reviewers", {"chen.reviewer"}),
    )


def test_a1_independent_approver_passes() -> None:
    assert separation() == []


def test_a1_refuses_investigator_acting_as_reviewer() -> None:
    reviewer = actor(username="li.officer", role=Role.REVIEWER, tier=None, approval_limit=None)
    [refusal] = separation(who=reviewer)
    assert refusal.rule == "A-1"
    assert refusal.kind is ViolationKind.FORBIDDEN
    assert "investigated" in refusal.message


def test_a1_refuses_investigator_as_branch_head_or_approver() -> None:
    head = actor(username="zhao.officer", role=Role.BRANCH_HEAD)
    assert rules_of(separation(who=head)) == ["A-1"]
    assert rules_of(separation(who=actor(username="zhao.officer"))) == ["A-1"]


def test_a1_refuses_reviewer_acting_as_approver() -> None:
    [refusal] = separation(who=actor(username="chen.reviewer"))
    assert refusal.kind is ViolationKind.FORBIDDEN
    assert "reviewed" in refusal.message


def test_a1_reviewer_may_act_as_reviewer_again() -> None:
    # Reviewing twice (after a return) is not a second role.
    reviewer = actor(username="chen.reviewer", role=Role.REVIEWER)
    assert separation(who=reviewer) == []


def test_a1_refuses_acting_on_own_household_loan() -> None:
    [refusal] = separation(who=actor(household_id="HH-0001"))
    assert refusal.kind is ViolationKind.FORBIDDEN
    assert "HH-0001" in refusal.message


# --- A-2 tiers, limits, route ---


def test_a2_tier_boundary_at_county_limit() -> None:
    assert approval_tier(Decimal("50000.00"), POLICY) is Tier.COUNTY
    assert approval_tier(Decimal("50000.01"), POLICY) is Tier.PREFECTURE
    assert tier_at_least(Tier.PREFECTURE, Tier.COUNTY)
    assert not tier_at_least(Tier.COUNTY, Tier.PREFECTURE)


def test_a2_route_after_investigation() -> None:
    assert decision_stages(Tier.COUNTY) == [Stage.REVIEW, Stage.APPROVAL]
    assert decision_stages(Tier.PREFECTURE) == [
        Stage.REVIEW,
        Stage.BRANCH_CONFIRMATION,
        Stage.PREFECTURE_REVIEW,
        Stage.APPROVAL,
    ]


def test_a2_approval_within_limit_passes() -> None:
    assert check_decision(approve(), actor(), sample_application(), Tier.COUNTY, POLICY) == []


def test_a2_refuses_approver_over_limit() -> None:
    small = actor(approval_limit=Decimal("20000"))
    [refusal] = check_decision(approve(), small, sample_application(), Tier.COUNTY, POLICY)
    assert refusal.rule == "A-2"
    assert refusal.kind is ViolationKind.FORBIDDEN
    assert "30,000.00" in refusal.message and "20,000.00" in refusal.message


def test_a2_approving_less_does_not_bring_a_loan_within_a_smaller_limit() -> None:
    small = actor(approval_limit=Decimal("20000"))
    cut = approve(amount=Decimal("20000"))
    [refusal] = check_decision(cut, small, sample_application(), Tier.COUNTY, POLICY)
    assert refusal.rule == "A-2" and "30,000.00" in refusal.message


def test_a2_refuses_actor_without_limit() -> None:
    nobody = actor(approval_limit=None)
    [refusal] = check_decision(approve(), nobody, sample_application(), Tier.COUNTY, POLICY)
    assert refusal.kind is ViolationKind.FORBIDDEN
    assert "no approval limit" in refusal.message


def test_a2_refuses_county_approver_on_prefecture_loan() -> None:
    app = sample_application(amount=Decimal("60000"), household_annual_income=Decimal("200000"))
    big_limit = actor(approval_limit=Decimal("100000"))
    decision = approve(amount=Decimal("60000"))
    [refusal] = check_decision(decision, big_limit, app, Tier.PREFECTURE, POLICY)
    assert refusal.rule == "A-2"
    assert refusal.kind is ViolationKind.FORBIDDEN
    assert "prefecture" in refusal.message
    prefecture = actor(tier=Tier.PREFECTURE, approval_limit=Decimal("200000"))
    assert check_decision(decision, prefecture, app, Tier.PREFECTURE, POLICY) == []


# --- A-3 outcomes ---


def test_a3_approval_may_lower_amount_and_term() -> None:
    decision = approve(amount=Decimal("20000"), term_months=6)
    assert check_decision(decision, actor(), sample_application(), Tier.COUNTY, POLICY) == []


def test_a3_refuses_raising_amount_or_term() -> None:
    decision = approve(amount=Decimal("30000.01"), term_months=18)
    refusals = check_decision(decision, actor(), sample_application(), Tier.COUNTY, POLICY)
    a3 = [r for r in refusals if r.rule == "A-3"]
    assert [r.field for r in a3] == ["decision.amount", "decision.term_months"]
    assert all(r.kind is ViolationKind.INVALID for r in a3)


def test_a3_return_and_reject_need_no_checks() -> None:
    nobody = actor(approval_limit=None, tier=None)
    for outcome in ("return", "reject"):
        decision = Decision(outcome=outcome, reason="收入证明不实")
        assert check_decision(decision, nobody, sample_application(), Tier.COUNTY, POLICY) == []


def test_a3_approved_terms_must_still_be_lendable() -> None:
    # E-9 minimum amount, E-10 minimum term.
    decision = approve(amount=Decimal("999"), term_months=5)
    refusals = check_decision(decision, actor(), sample_application(), Tier.COUNTY, POLICY)
    assert rules_of(refusals) == ["E-9", "E-10"]


def test_e14_refuses_approved_term_that_breaks_the_method() -> None:
    # Asked for 24 months equal installments; 12 months only allows the short-term methods.
    app = sample_application(term_months=24, repayment_method="equal_installment")
    decision = approve(term_months=12)
    [refusal] = check_decision(decision, actor(), app, Tier.COUNTY, POLICY)
    assert refusal.rule == "E-14"
    assert refusal.kind is ViolationKind.INVALID


def test_e14_a_shorter_term_may_come_with_a_method_that_fits_it() -> None:
    app = sample_application(term_months=24, repayment_method="equal_installment")
    decision = approve(term_months=12, repayment_method="interest_monthly")
    assert check_decision(decision, actor(), app, Tier.COUNTY, POLICY) == []


def test_p1_refuses_rate_outside_band() -> None:
    for rate in ("0.0299", "0.1801"):
        decision = approve(annual_rate=Decimal(rate))
        [refusal] = check_decision(decision, actor(), sample_application(), Tier.COUNTY, POLICY)
        assert refusal.rule == "P-1"
        assert refusal.field == "decision.annual_rate"
        assert "3% to 18%" in refusal.message
    for rate in ("0.03", "0.18"):
        decision = approve(annual_rate=Decimal(rate))
        assert check_decision(decision, actor(), sample_application(), Tier.COUNTY, POLICY) == []


# --- processing time limit ---


def test_a4_sla_working_days() -> None:
    assert sla_working_days(True, False, POLICY) == 3
    assert sla_working_days(False, False, POLICY) == 7
    assert sla_working_days(True, True, POLICY) == 6
    assert sla_working_days(False, True, POLICY) == 10


def test_a4_a5_decision_deadline_across_national_day() -> None:
    # Materials complete Tue 2025-09-30; Oct 1-8 off; Sat Oct 11 is an adjusted workday.
    start = date(2025, 9, 30)
    assert decision_deadline(start, True, False, POLICY, CALENDAR) == date(2025, 10, 11)
    assert decision_deadline(start, False, False, POLICY, CALENDAR) == date(2025, 10, 16)
    # Remote: 10 working days -> Oct 17 (8), Oct 20 (9), Oct 21 (10).
    assert decision_deadline(start, False, True, POLICY, CALENDAR) == date(2025, 10, 21)


def test_a4_ordinary_week() -> None:
    # Mon 2026-03-16 + 3 working days = Thu 2026-03-19.
    assert decision_deadline(date(2026, 3, 16), True, False, POLICY, CALENDAR) == date(2026, 3, 19)


# --- C-1 signing window, C-2 conditions ---


def signing(**overrides: Any) -> ContractSigning:
    data: dict[str, Any] = {
        "contract_number": "HT-2026-0001",
        "signed_on": date(2026, 4, 10),
        "guarantee_contracts_signed": True,
        **overrides,
    }
    return ContractSigning.model_validate(data)


APPROVED_ON = date(2026, 4, 1)


def test_c1_signing_deadline() -> None:
    assert signing_deadline(APPROVED_ON, POLICY) == date(2026, 5, 1)


def test_c1_signing_on_the_last_day_passes() -> None:
    s = signing(signed_on=date(2026, 5, 1))
    assert check_signing(s, sample_application(), [], APPROVED_ON, POLICY) == []


def test_c1_refuses_signing_after_window() -> None:
    s = signing(signed_on=date(2026, 5, 2))
    [refusal] = check_signing(s, sample_application(), [], APPROVED_ON, POLICY)
    assert refusal.rule == "C-1"
    assert refusal.kind is ViolationKind.CONFLICT
    assert "2026-05-02" in refusal.message and "2026-05-01" in refusal.message
    assert "lapsed" in refusal.message


def test_c1_refuses_signing_before_approval() -> None:
    s = signing(signed_on=date(2026, 3, 31))
    [refusal] = check_signing(s, sample_application(), [], APPROVED_ON, POLICY)
    assert refusal.rule == "C-1"
    assert refusal.kind is ViolationKind.CONFLICT


def test_c2_refuses_missing_condition() -> None:
    conditions = ["追加配偶为共同借款人", "提供购销合同"]
    s = signing(conditions_met=["提供购销合同"])
    [refusal] = check_signing(s, sample_application(), conditions, APPROVED_ON, POLICY)
    assert refusal.rule == "C-2"
    assert refusal.field == "signing.conditions_met"
    assert "追加配偶为共同借款人" in refusal.message
    met = signing(conditions_met=conditions)
    assert check_signing(met, sample_application(), conditions, APPROVED_ON, POLICY) == []


def test_c2_refuses_unsigned_guarantee_contract() -> None:
    s = signing(guarantee_contracts_signed=False)
    [refusal] = check_signing(s, sample_application(), [], APPROVED_ON, POLICY)
    assert refusal.rule == "C-2"
    assert refusal.field == "signing.guarantee_contracts_signed"


def test_c2_credit_loan_needs_no_guarantee_contract() -> None:
    app = sample_application(guarantee_type="credit", guarantors=[], amount=Decimal("5000"))
    s = signing(guarantee_contracts_signed=False)
    assert check_signing(s, app, [], APPROVED_ON, POLICY) == []


def test_c2_refuses_unregistered_collateral() -> None:
    app = sample_application(guarantee_type="mortgage", guarantors=[])
    [refusal] = check_signing(signing(), app, [], APPROVED_ON, POLICY)
    assert refusal.rule == "C-2"
    assert refusal.field == "signing.collateral_registered"
    assert check_signing(signing(collateral_registered=True), app, [], APPROVED_ON, POLICY) == []
