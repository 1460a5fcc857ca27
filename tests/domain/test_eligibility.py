"""Eligibility rules E-1 to E-15 (准入)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from domain.eligibility import (
    age_on,
    allowed_methods,
    check_application,
    check_credit_report,
    check_household,
    check_register_credit,
    credit_grade,
    grade_at_least,
    group_households,
    is_production_or_business,
    max_term_for,
    missing_materials,
)
from domain.errors import Refusal, ViolationKind
from domain.ids import make_resident_id
from domain.loan import (
    CreditGrade,
    CreditReport,
    HouseholdStanding,
    LoanApplication,
    Material,
    Purpose,
    RepaymentMethod,
)
from domain.policy import load_policy
from tests.domain.conftest import APPLICANT_ID, POLICY, TODAY, group_member, sample_application

RULES = POLICY.eligibility


def of_rule(refusals: list[Refusal], rule: str) -> list[Refusal]:
    return [r for r in refusals if r.rule == rule]


def born(birth: date, seq: str = "321") -> dict[str, object]:
    """Applicant overrides for a birth date with a matching, valid ID."""
    return {"birth_date": birth, "id_number": make_resident_id("410105", birth, seq)}


COLLATERAL = {
    "description": "农房一处",
    "title_number": "豫(2024)示范县不动产权第0001234号",
    "location": "李家村3组",
    "appraised_value": Decimal("120000.00"),
}


def test_test_policy_matches_the_policy_file() -> None:
    """The tests use the rulebook defaults; policy 2026.1 publishes exactly those."""
    published = load_policy(Path("policy/loanflow-2026.1.toml"))
    sections = ("eligibility", "investigation", "approval", "contract", "interest", "calendar")
    for section in sections:
        assert getattr(published, section) == getattr(POLICY, section), section


def test_sample_application_is_eligible() -> None:
    assert check_application(sample_application(), POLICY, TODAY) == []
    assert missing_materials(sample_application()) == []


# --- E-1 age ---


def test_age_on_counts_full_years() -> None:
    assert age_on(date(1980, 5, 20), date(2026, 5, 19)) == 45
    assert age_on(date(1980, 5, 20), date(2026, 5, 20)) == 46
    assert age_on(date(2004, 2, 29), date(2022, 2, 28)) == 17
    assert age_on(date(2004, 2, 29), date(2022, 3, 1)) == 18


def test_e1_refuses_under_18() -> None:
    app = sample_application(applicant=born(date(2008, 3, 17)))  # 17 on TODAY
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-1")
    assert refusal.field == "applicant.birth_date"
    assert "age 17" in refusal.message and "18" in refusal.message


def test_e1_accepts_18th_birthday() -> None:
    app = sample_application(applicant=born(date(2008, 3, 16)))
    assert of_rule(check_application(app, POLICY, TODAY), "E-1") == []


def test_e1_refuses_age_plus_term_over_60() -> None:
    # Age 56 on TODAY, 60 months (an orchard's longest term) = 5 years.
    app = sample_application(
        applicant=born(date(1969, 6, 1)),
        term_months=60,
        long_cycle_crop="orchard",
        repayment_method="equal_installment",
    )
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-1")
    assert refusal.message == "age 56 + term 5 years = 61 exceeds 60"
    assert refusal.field == "term_months"
    assert refusal.kind is ViolationKind.INVALID


def test_e1_fractional_years_use_exact_decimals() -> None:
    # Age 59 + 18 months = 60.5 > 60; age 57 + 36 months = 60 exactly is allowed.
    app = sample_application(
        applicant=born(date(1966, 6, 1)), term_months=18, repayment_method="equal_principal"
    )
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-1")
    assert refusal.message == "age 59 + term 1.5 years = 60.5 exceeds 60"
    ok = sample_application(
        applicant=born(date(1968, 6, 1)), term_months=36, repayment_method="equal_principal"
    )
    assert of_rule(check_application(ok, POLICY, TODAY), "E-1") == []


# --- E-2 identity ---


def test_e2_refuses_bad_checksum() -> None:
    wrong = "0" if APPLICANT_ID[-1] != "0" else "1"
    app = sample_application(applicant={"id_number": APPLICANT_ID[:17] + wrong})
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-2")
    assert refusal.field == "applicant.id_number"
    assert "check character" in refusal.message


def test_e2_refuses_birth_date_not_matching_id() -> None:
    app = sample_application(applicant={"birth_date": date(1981, 5, 20)})
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-2")
    assert refusal.field == "applicant.birth_date"
    assert "1980-05-20" in refusal.message and "1981-05-20" in refusal.message


def test_e2_refuses_future_birth_date() -> None:
    app = sample_application(applicant=born(TODAY + timedelta(days=1)))
    refusals = check_application(app, POLICY, TODAY)
    [refusal] = of_rule(refusals, "E-2")
    assert "in the future" in refusal.message
    assert of_rule(refusals, "E-1") == []  # no nonsense negative age on top


def test_e2_refuses_without_full_civil_capacity() -> None:
    app = sample_application(applicant={"full_civil_capacity": False})
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-2")
    assert refusal.field == "applicant.full_civil_capacity"


# --- E-3 residence ---


def test_e3_refuses_short_residence() -> None:
    app = sample_application(applicant={"resident_months": 11})
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-3")
    assert refusal.field == "applicant.resident_months"
    assert "11 months" in refusal.message and "12 months" in refusal.message


def test_e3_accepts_twelve_months() -> None:
    app = sample_application(applicant={"resident_months": 12})
    assert of_rule(check_application(app, POLICY, TODAY), "E-3") == []


def test_e3_refuses_without_fixed_residence() -> None:
    app = sample_application(applicant={"fixed_residence": False})
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-3")
    assert refusal.field == "applicant.fixed_residence"


# --- E-4 credit grade ---


def test_e4_grade_floors_inclusive() -> None:
    cases = {
        100: CreditGrade.AAA,
        90: CreditGrade.AAA,
        89: CreditGrade.AA,
        80: CreditGrade.AA,
        70: CreditGrade.A,
        69: CreditGrade.BBB,
        60: CreditGrade.BBB,
        50: CreditGrade.BB,
        40: CreditGrade.B,
        39: CreditGrade.C,
        0: CreditGrade.C,
    }
    for score, grade in cases.items():
        assert credit_grade(score, RULES) is grade, score


def test_e4_grade_order() -> None:
    assert grade_at_least(CreditGrade.AAA, CreditGrade.A)
    assert grade_at_least(CreditGrade.A, CreditGrade.A)
    assert not grade_at_least(CreditGrade.BBB, CreditGrade.A)
    assert not grade_at_least(CreditGrade.C, CreditGrade.B)


def test_e4_refuses_score_below_60() -> None:
    app = sample_application(credit_rating={"score": 59})
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-4")
    assert refusal.field == "credit_rating.score"
    assert "59" in refusal.message and "60" in refusal.message
    ok = sample_application(credit_rating={"score": 60})
    assert of_rule(check_application(ok, POLICY, TODAY), "E-4") == []


def test_e4_refuses_expired_rating() -> None:
    app = sample_application(credit_rating={"rated_on": TODAY - timedelta(days=366)})
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-4")
    assert refusal.field == "credit_rating.rated_on"
    assert "366 days" in refusal.message and "365 days" in refusal.message
    ok = sample_application(credit_rating={"rated_on": TODAY - timedelta(days=365)})
    assert of_rule(check_application(ok, POLICY, TODAY), "E-4") == []


def test_e4_refuses_rating_dated_in_the_future() -> None:
    app = sample_application(credit_rating={"rated_on": TODAY + timedelta(days=1)})
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-4")
    assert "future" in refusal.message


# --- E-5, E-6 credit report ---


def report(**fields: object) -> CreditReport:
    return CreditReport.model_validate({"report_id": "CR-1", "fetched_on": TODAY, **fields})


def test_e5_refuses_overdue_loan() -> None:
    [refusal] = check_credit_report(report(overdue_loans=2))
    assert refusal.rule == "E-5"
    assert refusal.kind is ViolationKind.CONFLICT
    assert refusal.field is None
    assert "2 overdue" in refusal.message


def test_e5_allows_overdue_from_declared_disaster() -> None:
    assert check_credit_report(report(overdue_loans=1, overdue_from_declared_disaster=True)) == []
    assert check_credit_report(report()) == []


def test_e6_refuses_each_prohibited_record() -> None:
    refusals = check_credit_report(
        report(
            fraud_or_debt_evasion=True,
            criminal_record=True,
            gambling_or_drugs=True,
            banned_business=True,
        )
    )
    assert [r.rule for r in refusals] == ["E-6"] * 4
    assert all(r.kind is ViolationKind.CONFLICT and r.field is None for r in refusals)
    assert "criminal record" in refusals[1].message


# --- E-7, E-12 register, E-15 splitting ---


def test_e7_refuses_second_application_of_household() -> None:
    standing = HouseholdStanding(claimed_by_other_loan="LOAN-2026-0042")
    [refusal] = check_household(sample_application(), standing, POLICY)
    assert refusal.rule == "E-7"
    assert refusal.kind is ViolationKind.CONFLICT
    assert "LOAN-2026-0042" in refusal.message
    assert refusal.field == "applicant.household_id"


def test_e7_free_household_passes() -> None:
    assert check_household(sample_application(), HouseholdStanding(), POLICY) == []


def test_e12_refuses_register_group_conflicts() -> None:
    standing = HouseholdStanding(group_conflicts=["HH-1001 is already in group G-7"])
    [refusal] = check_household(sample_application(), standing, POLICY)
    assert refusal.rule == "E-12"
    assert refusal.kind is ViolationKind.CONFLICT
    assert "HH-1001 is already in group G-7" in refusal.message


def test_e15_refuses_splitting_across_tier_boundary() -> None:
    # 30 000 alone is county tier; with 25 000 applied for last month the total 55 000
    # would need the prefecture branch.
    standing = HouseholdStanding(recent_amounts=[Decimal("25000.00")])
    [refusal] = check_household(sample_application(), standing, POLICY)
    assert refusal.rule == "E-15"
    assert refusal.kind is ViolationKind.CONFLICT
    assert "55,000.00" in refusal.message and "30,000.00" in refusal.message
    assert "prefecture" in refusal.message and "county" in refusal.message


def test_e15_allows_total_at_the_county_limit() -> None:
    standing = HouseholdStanding(recent_amounts=[Decimal("12000.00"), Decimal("8000.00")])
    assert check_household(sample_application(), standing, POLICY) == []  # 50 000 exactly


def test_e15_allows_when_amount_alone_needs_the_higher_tier() -> None:
    app = sample_application(amount=Decimal("60000.00"), household_annual_income=Decimal("200000"))
    standing = HouseholdStanding(recent_amounts=[Decimal("10000.00")])
    assert check_household(app, standing, POLICY) == []


# --- E-8 purpose ---


def test_e8_refuses_long_cycle_crop_with_other_purpose() -> None:
    app = sample_application(purpose="trade", long_cycle_crop="orchard")
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-8")
    assert refusal.field == "long_cycle_crop"


def test_e8_production_or_business_purposes() -> None:
    assert is_production_or_business(Purpose.FARM_MACHINERY)
    assert is_production_or_business(Purpose.TRANSPORT)
    assert not is_production_or_business(Purpose.EDUCATION)
    assert not is_production_or_business(Purpose.WEDDING_FUNERAL)


# --- E-9 amount ---


def test_e9_refuses_below_minimum_and_above_maximum() -> None:
    low = sample_application(amount=Decimal("999.99"))
    [refusal] = of_rule(check_application(low, POLICY, TODAY), "E-9")
    assert refusal.message == "amount 999.99 is below the minimum 1,000.00"
    high = sample_application(amount=Decimal("200000.01"), household_annual_income=Decimal("1e6"))
    [refusal] = of_rule(check_application(high, POLICY, TODAY), "E-9")
    assert "exceeds the maximum 200,000.00" in refusal.message


def test_e9_accepts_bounds() -> None:
    for amount in ("1000", "200000"):
        app = sample_application(amount=Decimal(amount), household_annual_income=Decimal("1e6"))
        assert of_rule(check_application(app, POLICY, TODAY), "E-9") == []


def test_e9_refuses_amount_over_half_of_income() -> None:
    app = sample_application(amount=Decimal("40000.01"))  # income 80 000
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-9")
    assert refusal.message == (
        "amount 40,000.01 exceeds 50% of household annual income 80,000.00 (40,000.00)"
    )
    ok = sample_application(amount=Decimal("40000.00"))
    assert of_rule(check_application(ok, POLICY, TODAY), "E-9") == []


def test_e9_refuses_fractions_of_a_cent() -> None:
    # The model refuses three decimals at the edge; the rule still guards copies.
    app = sample_application().model_copy(update={"amount": Decimal("30000.005")})
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-9")
    assert "more than two decimals" in refusal.message


def test_e9_refuses_credit_loan_over_grade_line() -> None:
    # Score 75 = grade A, credit line 5 000.
    app = sample_application(
        guarantee_type="credit",
        guarantors=[],
        amount=Decimal("5000.01"),
        credit_rating={"score": 75},
    )
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-9")
    assert "credit line 5,000.00 of grade A" in refusal.message
    ok = sample_application(
        guarantee_type="credit", guarantors=[], amount=Decimal("5000"), credit_rating={"score": 75}
    )
    assert check_application(ok, POLICY, TODAY) == []


# --- E-10 term ---


def test_e10_refuses_term_below_minimum() -> None:
    app = sample_application(term_months=5)
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-10")
    assert refusal.field == "term_months"
    assert "5 months" in refusal.message and "6 months" in refusal.message
    assert (
        of_rule(check_application(sample_application(term_months=6), POLICY, TODAY), "E-10") == []
    )


def test_e10_refuses_term_over_36_without_long_cycle_crop() -> None:
    app = sample_application(term_months=37, repayment_method="equal_installment")
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-10")
    assert "37 months exceeds the maximum 36 months" in refusal.message


def test_e10_long_cycle_crop_may_run_to_60_months() -> None:
    app = sample_application(
        term_months=60, long_cycle_crop="orchard", repayment_method="equal_installment"
    )
    assert max_term_for(app, RULES) == 60
    assert check_application(app, POLICY, TODAY) == []
    longer = sample_application(
        term_months=61, long_cycle_crop="rubber", repayment_method="equal_installment"
    )
    [refusal] = of_rule(check_application(longer, POLICY, TODAY), "E-10")
    assert "61 months exceeds the maximum 60 months" in refusal.message


def test_e10_long_cycle_crop_ignored_for_other_purposes() -> None:
    app = sample_application(purpose="trade", long_cycle_crop="orchard")
    assert max_term_for(app, RULES) == 36


# --- E-11 guarantee ---


def test_e11_refuses_credit_loan_below_grade_a() -> None:
    app = sample_application(
        guarantee_type="credit", guarantors=[], amount=Decimal("1000"), credit_rating={"score": 69}
    )
    refusals = check_application(app, POLICY, TODAY)
    [refusal] = of_rule(refusals, "E-11")
    assert refusal.field == "guarantee_type"
    assert "grade A or better" in refusal.message and "BBB" in refusal.message


def test_e11_refuses_guarantee_without_guarantor() -> None:
    app = sample_application(guarantors=[])
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-11")
    assert refusal.field == "guarantors"


def test_e11_refuses_guarantor_of_own_household_or_bad_id() -> None:
    guarantor = sample_application().guarantors[0].model_dump()
    same_household = {**guarantor, "household_id": "HH-0001"}
    bad_id = {**guarantor, "id_number": "410105197502034560"}
    app = sample_application(guarantors=[same_household, bad_id])
    refusals = of_rule(check_application(app, POLICY, TODAY), "E-11")
    assert {r.field for r in refusals} == {"guarantors.0.household_id", "guarantors.1.id_number"}


def test_e11_refuses_mortgage_without_collateral() -> None:
    app = sample_application(guarantee_type="mortgage", guarantors=[])
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-11")
    assert refusal.field == "collateral"
    ok = sample_application(guarantee_type="pledge", guarantors=[], collateral=[COLLATERAL])
    assert check_application(ok, POLICY, TODAY) == []


# --- E-12 joint-liability group ---


def group_app(*members: dict[str, object]) -> LoanApplication:
    return sample_application(guarantee_type="group", guarantors=[], group_members=list(members))


def test_e12_accepts_three_households() -> None:
    assert check_application(group_app(group_member(1), group_member(2)), POLICY, TODAY) == []


def test_e12_refuses_too_few_households() -> None:
    [refusal] = of_rule(check_application(group_app(group_member(1)), POLICY, TODAY), "E-12")
    assert refusal.field == "group_members"
    assert "2 households" in refusal.message and "at least 3" in refusal.message


def test_e12_refuses_repeated_or_own_household() -> None:
    app = group_app(
        group_member(1),
        group_member(2, household_id="HH-1001"),
        group_member(3, household_id="HH-0001"),
    )
    messages = [r.message for r in of_rule(check_application(app, POLICY, TODAY), "E-12")]
    assert any("more than once" in m and "HH-1001" in m for m in messages)
    assert any("own household HH-0001" in m for m in messages)
    assert any("2 households" in m for m in messages)


def test_e12_refuses_relative_of_applicant() -> None:
    app = group_app(group_member(1), group_member(2, relative_of_applicant=True))
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-12")
    assert "relative" in refusal.message


def test_e12_group_members_belong_only_to_a_group_loan() -> None:
    app = sample_application(group_members=[group_member(1), group_member(2)])
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-12")
    assert refusal.field == "group_members" and "only for a group" in refusal.message
    assert group_households(app) == []  # nobody is locked into a group the loan lacks


def test_e12_the_applicants_household_is_in_its_own_group() -> None:
    app = group_app(group_member(1), group_member(2))
    assert group_households(app) == [
        app.applicant.household_id,
        *(m.household_id for m in app.group_members),
    ]


# --- E-13 materials ---


def test_e13_lists_missing_materials_in_enum_order() -> None:
    app = sample_application(materials=[Material.CREDIT_RECORD, Material.ID_CARD])
    assert missing_materials(app) == [
        Material.HOUSEHOLD_REGISTER,
        Material.INCOME_PROOF,
        Material.BUSINESS_PROOF,
    ]


def test_e13_consumption_loan_needs_no_business_proof() -> None:
    app = sample_application(purpose="education", materials=[])
    assert missing_materials(app) == [
        Material.ID_CARD,
        Material.HOUSEHOLD_REGISTER,
        Material.INCOME_PROOF,
        Material.CREDIT_RECORD,
    ]


def test_e13_secured_loan_needs_collateral_title() -> None:
    materials = [m for m in Material if m is not Material.COLLATERAL_TITLE]
    app = sample_application(
        guarantee_type="mortgage", guarantors=[], collateral=[COLLATERAL], materials=materials
    )
    assert missing_materials(app) == [Material.COLLATERAL_TITLE]
    assert missing_materials(sample_application(materials=materials)) == []


# --- E-14 repayment method ---


def test_e14_allowed_methods_by_term() -> None:
    short = {
        RepaymentMethod.LUMP_SUM,
        RepaymentMethod.INTEREST_MONTHLY,
        RepaymentMethod.INTEREST_QUARTERLY,
    }
    long = {RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL}
    assert allowed_methods(6, RULES) == short
    assert allowed_methods(12, RULES) == short
    assert allowed_methods(13, RULES) == long
    assert allowed_methods(60, RULES) == long


def test_e14_refuses_installments_for_12_months() -> None:
    app = sample_application(repayment_method="equal_installment")
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-14")
    assert refusal.field == "repayment_method"
    assert "12 months" in refusal.message and "lump_sum" in refusal.message


def test_e14_refuses_lump_sum_over_12_months() -> None:
    app = sample_application(term_months=13, repayment_method="lump_sum")
    [refusal] = of_rule(check_application(app, POLICY, TODAY), "E-14")
    assert "equal_installment" in refusal.message


def test_e14_accepts_equal_principal_for_24_months() -> None:
    app = sample_application(term_months=24, repayment_method="equal_principal")
    assert check_application(app, POLICY, TODAY) == []


# --- all at once ---


def test_every_failure_is_listed_not_just_the_first() -> None:
    app = sample_application(
        applicant={"resident_months": 3, "full_civil_capacity": False},
        credit_rating={"score": 30},
        amount=Decimal("500"),
        term_months=3,
        repayment_method="equal_principal",
        guarantors=[],
    )
    rules = {r.rule for r in check_application(app, POLICY, TODAY)}
    assert rules == {"E-2", "E-3", "E-4", "E-9", "E-10", "E-11", "E-14"}


def test_e6_a_blacklisted_household_is_refused() -> None:
    [refusal] = check_register_credit(None, True, POLICY)
    assert (refusal.rule, refusal.field) == ("E-6", "applicant.household_id")
    assert "D-5" in refusal.message


def test_e4_a_score_lowered_by_f2_counts_instead_of_the_rating() -> None:
    [refusal] = check_register_credit(59, False, POLICY)
    assert refusal.rule == "E-4" and "59" in refusal.message
    assert check_register_credit(60, False, POLICY) == []
    assert check_register_credit(None, False, POLICY) == []
