"""Bounds on an application's numbers (E-9, E-10), checked before any rule reads them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from domain.bounds import check_bounds, largest_term
from domain.eligibility import check_application
from domain.errors import Refusal, ViolationKind
from domain.ids import make_resident_id
from domain.loan import MAX_TERM_MONTHS
from domain.policy import EligibilityPolicy
from tests.domain.conftest import POLICY, TODAY, sample_application

RULES = POLICY.eligibility
# 56 on TODAY: with any term over four years, age plus term breaks E-1.
BIRTH = date(1970, 1, 1)
OLD = {"birth_date": BIRTH, "id_number": make_resident_id("410105", BIRTH, "123")}


def test_the_largest_term_is_the_long_cycle_limit() -> None:
    assert largest_term(RULES) == RULES.max_term_months_long_cycle == 60


def test_numbers_within_the_bounds_pass() -> None:
    app = sample_application(amount=RULES.max_amount, term_months=largest_term(RULES))
    assert check_bounds(app, RULES) == []


def test_an_absurd_term_is_refused_alone_and_readably() -> None:
    # The model refuses 10**20 at the edge; the check still guards copies.
    app = sample_application(applicant=OLD).model_copy(update={"term_months": 10**20})

    refusals = check_application(app, POLICY, TODAY)

    assert refusals == [
        Refusal(
            rule="E-10",
            message=f"term {10**20} months exceeds the maximum 60 months, "
            "the longest term the policy allows any loan",
            field="term_months",
            kind=ViolationKind.INVALID,
        )
    ]


def test_a_term_beyond_the_largest_is_refused_before_e1() -> None:
    # Age 56 + 100 months would also break E-1; only the bound is reported.
    app = sample_application(applicant=OLD, term_months=100)

    [refusal] = check_application(app, POLICY, TODAY)

    assert (refusal.rule, refusal.field) == ("E-10", "term_months")
    assert "100 months exceeds the maximum 60 months" in refusal.message


def test_an_amount_over_the_cap_is_refused_alone() -> None:
    # Over the cap, over half the income and over the term limit: the bounds only.
    app = sample_application(amount=Decimal("999999999999.99"), term_months=61)

    refusals = check_application(app, POLICY, TODAY)

    assert [(r.rule, r.field) for r in refusals] == [("E-9", "amount"), ("E-10", "term_months")]
    assert refusals[0].message == "amount 999,999,999,999.99 exceeds the maximum 200,000.00"


def test_the_model_refuses_a_term_no_policy_could_allow() -> None:
    with pytest.raises(ValidationError) as refused:
        sample_application(term_months=10**20)
    [error] = refused.value.errors()
    assert error["loc"] == ("term_months",)
    assert error["msg"] == f"Input should be less than or equal to {MAX_TERM_MONTHS}"


def test_a_policy_cannot_allow_a_term_the_models_refuse() -> None:
    with pytest.raises(ValidationError, match="max_term_months_long_cycle"):
        EligibilityPolicy(max_term_months_long_cycle=MAX_TERM_MONTHS + 1)
