"""Extension (展期), rules X-1 to X-7, with dates."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from domain.errors import Refusal, ViolationKind
from domain.extension import (
    ExtensionRequest,
    check_agreement_signed,
    check_extension_method,
    check_extension_request,
    extended_maturity,
    extension_schedule,
    extension_term_months,
    max_extension_months,
)
from domain.loan import LoanClass, RepaymentMethod
from domain.policy import ExtensionPolicy, Policy
from tests.domain.conftest import POLICY

D = Decimal
M = RepaymentMethod
MATURITY = date(2027, 3, 16)  # a 12-month loan disbursed 2026-03-16
LATEST = date(2027, 3, 1)  # 15 days before maturity


def request(**overrides: Any) -> ExtensionRequest:
    data: dict[str, Any] = {
        "requested_on": LATEST,
        "months": 6,
        "reason": "旱灾减产, 果园收入推迟到秋季",
        "guarantor_consent": True,
        **overrides,
    }
    return ExtensionRequest.model_validate(data)


def check(req: ExtensionRequest, **overrides: Any) -> list[Refusal]:
    args: dict[str, Any] = {
        "maturity": MATURITY,
        "original_term_months": 12,
        "loan_class": LoanClass.NORMAL,
        "extensions_so_far": 0,
        "policy": POLICY,
        **overrides,
    }
    return check_extension_request(req, **args)


def rules_of(refusals: list[Refusal]) -> list[str]:
    return [r.rule for r in refusals]


def test_x_request_inside_every_limit_passes() -> None:
    assert check(request()) == []
    assert check(request(months=12), loan_class=LoanClass.SPECIAL_MENTION) == []


# --- X-1 window and consent ---


def test_x1_fifteen_days_before_maturity_is_in_time() -> None:
    assert check(request(requested_on=date(2027, 3, 1))) == []
    assert check(request(requested_on=date(2026, 12, 1))) == []


def test_x1_fourteen_days_before_maturity_is_too_late() -> None:
    [refusal] = check(request(requested_on=date(2027, 3, 2)))
    assert (refusal.rule, refusal.kind, refusal.field) == (
        "X-1",
        ViolationKind.CONFLICT,
        "requested_on",
    )
    assert "too late" in refusal.message
    for shown in ("2027-03-02", "2027-03-16", "2027-03-01", "15 days"):
        assert shown in refusal.message


def test_x1_after_maturity_is_too_late() -> None:
    assert rules_of(check(request(requested_on=date(2027, 3, 20)))) == ["X-1"]


def test_x1_guarantor_consent_is_required() -> None:
    [refusal] = check(request(guarantor_consent=False))
    assert (refusal.rule, refusal.kind, refusal.field) == (
        "X-1",
        ViolationKind.INVALID,
        "guarantor_consent",
    )


def test_x1_no_consent_to_ask_without_a_guarantor() -> None:
    assert check(request(guarantor_consent=False), has_guarantor=False) == []


def test_x1_request_needs_a_reason_and_positive_months() -> None:
    with pytest.raises(ValidationError):
        request(reason="   ")
    with pytest.raises(ValidationError):
        request(months=0)


# --- X-2 classification ---


def test_x2_normal_and_special_mention_may_be_extended() -> None:
    for loan_class in (LoanClass.NORMAL, LoanClass.SPECIAL_MENTION):
        assert check(request(), loan_class=loan_class) == []


def test_x2_substandard_and_worse_are_refused() -> None:
    for loan_class, name in (
        (LoanClass.SUBSTANDARD, "次级"),
        (LoanClass.DOUBTFUL, "可疑"),
        (LoanClass.LOSS, "损失"),
    ):
        [refusal] = check(request(), loan_class=loan_class)
        assert (refusal.rule, refusal.kind) == ("X-2", ViolationKind.CONFLICT)
        assert name in refusal.message


# --- X-3 length ---


def test_x3_max_extension_months() -> None:
    rules = POLICY.extension
    assert max_extension_months(6, rules) == 6  # ≤ 12: the original term
    assert max_extension_months(12, rules) == 12
    assert max_extension_months(13, rules) == 6  # 12-60: half, rounded down
    assert max_extension_months(24, rules) == 12
    assert max_extension_months(60, rules) == 30
    assert max_extension_months(61, rules) == 36  # > 60: three years
    assert max_extension_months(120, rules) == 36
    assert max_extension_months(120, ExtensionPolicy(long_extension_max_months=24)) == 24


def test_x3_longer_than_the_original_short_term_is_refused() -> None:
    [refusal] = check(request(months=13))
    assert (refusal.rule, refusal.kind, refusal.field) == ("X-3", ViolationKind.INVALID, "months")
    assert "13 months" in refusal.message and "12 months" in refusal.message


def test_x3_more_than_half_a_medium_term_is_refused() -> None:
    maturity = date(2028, 3, 16)  # 24 months
    assert check(request(months=12), maturity=maturity, original_term_months=24) == []
    [refusal] = check(request(months=13), maturity=maturity, original_term_months=24)
    assert refusal.rule == "X-3"
    assert "exceeds the 12 months" in refusal.message


# --- X-7 once ---


def test_x7_second_extension_is_refused() -> None:
    [refusal] = check(request(), extensions_so_far=1)
    assert (refusal.rule, refusal.kind) == ("X-7", ViolationKind.CONFLICT)


def test_x7_policy_may_allow_more() -> None:
    policy = Policy(
        version="t",
        effective_from=date(2026, 1, 1),
        institution="x",
        extension=ExtensionPolicy(max_extensions=2),
    )
    assert check(request(), extensions_so_far=1, policy=policy) == []
    assert rules_of(check(request(), extensions_so_far=2, policy=policy)) == ["X-7"]


def test_x_every_refusal_at_once() -> None:
    req = request(requested_on=date(2027, 3, 10), guarantor_consent=False, months=24)
    refusals = check(req, loan_class=LoanClass.SUBSTANDARD, extensions_so_far=1)
    assert rules_of(refusals) == ["X-1", "X-1", "X-2", "X-3", "X-7"]


# --- X-5 agreement ---


def test_x5_agreement_signed_before_the_original_maturity() -> None:
    assert check_agreement_signed(date(2027, 3, 15), MATURITY) == []


def test_x5_agreement_on_or_after_maturity_is_refused() -> None:
    for signed_on in (date(2027, 3, 16), date(2027, 3, 17)):
        [refusal] = check_agreement_signed(signed_on, MATURITY)
        assert (refusal.rule, refusal.kind, refusal.field) == (
            "X-5",
            ViolationKind.CONFLICT,
            "signed_on",
        )
        assert str(signed_on) in refusal.message and "2027-03-16" in refusal.message


# --- new maturity and X-6 schedule ---


def test_x_extended_maturity() -> None:
    assert extended_maturity(MATURITY, 6) == date(2027, 9, 16)
    assert extended_maturity(date(2027, 1, 31), 1) == date(2027, 2, 28)


def test_x6_extension_term_months() -> None:
    assert extension_term_months(MATURITY, date(2027, 9, 16)) == 6
    assert extension_term_months(date(2027, 1, 31), date(2027, 2, 28)) == 1
    assert extension_term_months(date(2026, 3, 16), date(2026, 9, 20)) == 7  # part month
    with pytest.raises(ValueError):
        extension_term_months(MATURITY, MATURITY)


def test_x6_lump_sum_extension_schedule_by_hand() -> None:
    # 50 000 at 6% from 2027-03-16 to 2027-09-16: 184 days (15+30+31+30+31+31+16);
    # 50 000 × 0.06 × 184 / 360 = 1 533.333… -> 1 533.33
    lines = extension_schedule(
        D("50000"), D("0.06"), M.LUMP_SUM, MATURITY, date(2027, 9, 16), POLICY
    )
    assert [(i.number, i.due_date, i.days, i.principal, i.interest) for i in lines] == [
        (1, date(2027, 9, 16), 184, D("50000.00"), D("1533.33"))
    ]


def test_x6_interest_monthly_extension_falls_due_monthly_from_the_start() -> None:
    # 10 000 at 7.2% (2.00 a day): 04-16 (31 days) 62.00, 05-16 (30) 60.00, 05-20 (4) 8.00
    lines = extension_schedule(
        D("10000"), D("0.072"), M.INTEREST_MONTHLY, MATURITY, date(2027, 5, 20), POLICY
    )
    assert [(i.due_date, i.interest, i.principal) for i in lines] == [
        (date(2027, 4, 16), D("62.00"), D("0.00")),
        (date(2027, 5, 16), D("60.00"), D("0.00")),
        (date(2027, 5, 20), D("8.00"), D("10000.00")),
    ]


def test_x6_installment_method_kept_when_the_new_term_allows_it() -> None:
    # extended from 2027-01-31 to 2028-03-31: 14 months, over 12, so 等额本息 stays
    lines = extension_schedule(
        D("6000"), D("0.072"), M.EQUAL_INSTALLMENT, date(2027, 1, 31), date(2028, 3, 31), POLICY
    )
    assert len(lines) == 14
    assert lines[-1].due_date == date(2028, 3, 31)
    assert sum(i.principal for i in lines) == D("6000.00")
    assert len({i.payment for i in lines[:-1]}) == 1


def test_x6_method_the_new_term_does_not_allow_is_refused() -> None:
    # a 24-month 等额本息 loan extended 6 months at maturity: a 6-month loan may not be
    # paid in installments (E-14), so the extension cannot keep its method
    start, end = date(2028, 3, 16), date(2028, 9, 16)
    [refusal] = check_extension_method(M.EQUAL_INSTALLMENT, start, end, POLICY)
    assert refusal.rule == "E-14"
    with pytest.raises(ValueError, match="not allowed for a term of 6 months"):
        extension_schedule(D("5000"), D("0.072"), M.EQUAL_INSTALLMENT, start, end, POLICY)
    # and a lump sum does not fit an extended term over 12 months
    assert check_extension_method(M.LUMP_SUM, start, date(2029, 9, 16), POLICY) != []
    assert check_extension_method(M.LUMP_SUM, start, end, POLICY) == []
