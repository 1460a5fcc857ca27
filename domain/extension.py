"""Extension (展期), rules X-1 to X-7.

The checks here are the mechanical ones, each returning every refusal at once. The rest
of X-2 (health, business, willingness to pay, no breach, guarantee still adequate) is the
reviewer's judgement on the approval route of X-4, which reuses origination's.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.eligibility import allowed_methods, method_refusal
from domain.errors import Refusal, ViolationKind
from domain.loan import CLASS_NAMES, Installment, LoanClass, RepaymentMethod
from domain.policy import ExtensionPolicy, Policy
from domain.schedule import add_months, build_schedule_on_dates
from domain.text import SEVERAL_LINES

EXTENDABLE_CLASSES = frozenset({LoanClass.NORMAL, LoanClass.SPECIAL_MENTION})


class ExtensionRequest(BaseModel):
    """The borrower's application for an extension (展期申请), X-1."""

    model_config = ConfigDict(extra="forbid")

    requested_on: date
    months: int = Field(gt=0)
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000), SEVERAL_LINES]
    guarantor_consent: bool  # the guarantor's written consent (担保人书面同意)


def max_extension_months(original_term_months: int, policy: ExtensionPolicy) -> int:
    """Rule X-3: the original term up to 12 months, half of it up to 60, else 3 years."""
    if original_term_months <= policy.short_term_max_months:
        return original_term_months
    if original_term_months <= policy.medium_term_max_months:
        return original_term_months // 2
    return policy.long_extension_max_months


def check_extension_request(
    request: ExtensionRequest,
    *,
    maturity: date,
    original_term_months: int,
    loan_class: LoanClass,
    extensions_so_far: int,
    policy: Policy,
    has_guarantor: bool = True,
) -> list[Refusal]:
    """Rules X-1, X-2 (classification), X-3 and X-7 on a request; empty when it may proceed.

    ``has_guarantor`` is False for a loan without a guarantor (a credit loan, or one
    secured by the borrower's own collateral): there is no consent to ask for.
    """
    rules = policy.extension
    out: list[Refusal] = []
    deadline = maturity - timedelta(days=rules.extension_request_days)
    if request.requested_on > deadline:
        out.append(
            Refusal(
                rule="X-1",
                message=f"extension requested on {request.requested_on} is too late: the loan "
                f"matures on {maturity} and a request must come at least "
                f"{rules.extension_request_days} days before, by {deadline}",
                field="requested_on",
                kind=ViolationKind.CONFLICT,
            )
        )
    if has_guarantor and not request.guarantor_consent:
        out.append(
            Refusal(
                rule="X-1",
                message="an extension needs the guarantor's written consent (担保人书面同意)",
                field="guarantor_consent",
            )
        )
    if loan_class not in EXTENDABLE_CLASSES:
        out.append(
            Refusal(
                rule="X-2",
                message=f"the loan is classified {CLASS_NAMES[loan_class]} ({loan_class}); "
                "only 正常 (normal) or 关注 (special mention) loans may be extended",
                field=None,
                kind=ViolationKind.CONFLICT,
            )
        )
    limit = max_extension_months(original_term_months, rules)
    if request.months > limit:
        out.append(
            Refusal(
                rule="X-3",
                message=f"an extension of {request.months} months exceeds the {limit} months "
                f"allowed for an original term of {original_term_months} months",
                field="months",
            )
        )
    if extensions_so_far >= rules.max_extensions:
        out.append(
            Refusal(
                rule="X-7",
                message=f"the loan has been extended {extensions_so_far} time(s); "
                f"at most {rules.max_extensions} extension(s) are allowed",
                field=None,
                kind=ViolationKind.CONFLICT,
            )
        )
    return out


def extended_maturity(maturity: date, months: int) -> date:
    """The maturity after an extension of ``months`` months."""
    return add_months(maturity, months)


def check_agreement_signed(signed_on: date, original_maturity: date) -> list[Refusal]:
    """Rule X-5: the extension agreement is signed before (not on) the original maturity."""
    if signed_on < original_maturity:
        return []
    return [
        Refusal(
            rule="X-5",
            message=f"the extension agreement signed on {signed_on} is not before the "
            f"original maturity {original_maturity}",
            field="signed_on",
            kind=ViolationKind.CONFLICT,
        )
    ]


def extension_term_months(start: date, new_maturity: date) -> int:
    """Whole months from ``start`` to ``new_maturity``, a part month counting as one."""
    if new_maturity <= start:
        raise ValueError(f"new maturity {new_maturity} is not after the start {start}")
    months = (new_maturity.year - start.year) * 12 + new_maturity.month - start.month
    months = max(months, 1)
    while add_months(start, months) < new_maturity:
        months += 1
    while months > 1 and add_months(start, months - 1) >= new_maturity:
        months -= 1
    return months


def check_extension_method(
    method: RepaymentMethod, start: date, new_maturity: date, policy: Policy
) -> list[Refusal]:
    """Rules X-6 and E-14: the method must suit the extended schedule's own term."""
    term = extension_term_months(start, new_maturity)
    if method in allowed_methods(term, policy.eligibility):
        return []
    return [method_refusal(method, term, policy.eligibility, "repayment_method")]


def extension_schedule(
    outstanding: Decimal,
    annual_rate: Decimal,
    method: RepaymentMethod,
    start: date,
    new_maturity: date,
    policy: Policy,
) -> list[Installment]:
    """Rule X-6: the schedule of an extended loan, managed as a new loan from ``start``.

    ``outstanding`` is the principal extended (interest due is paid, never capitalised);
    ``annual_rate`` is the rate after any re-tiering for the total term, which the
    approval sets. The method is kept when E-14 allows it for the term from ``start``
    to ``new_maturity``; otherwise this raises ValueError (check_extension_method says
    so before approval). Due dates fall monthly or quarterly from ``start``, the last on
    ``new_maturity``.
    """
    refusals = check_extension_method(method, start, new_maturity, policy)
    if refusals:
        raise ValueError(refusals[0].message)
    term = extension_term_months(start, new_maturity)
    if method is RepaymentMethod.LUMP_SUM:
        steps: list[int] = []
    elif method is RepaymentMethod.INTEREST_QUARTERLY:
        steps = list(range(3, term, 3))
    else:
        steps = list(range(1, term))
    due_dates = [add_months(start, m) for m in steps] + [new_maturity]
    return build_schedule_on_dates(
        outstanding, annual_rate, method, start, due_dates, policy.interest.day_count_basis
    )
