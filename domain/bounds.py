"""Bounds (取值范围) on an application's numbers, checked before any eligibility rule.

A rule that reads a number far outside what the policy could ever grant says something
absurd ("age 41 + term 8333333333333333333.33 years"), so the application's checks begin
here and stop here when a bound is broken: the refusal names the field and its limit.
"""

from __future__ import annotations

from domain.errors import Refusal
from domain.loan import LoanApplication
from domain.policy import EligibilityPolicy


def largest_term(rules: EligibilityPolicy) -> int:
    """The longest term any application may ask for under the policy (E-10, long cycle)."""
    return max(rules.max_term_months, rules.max_term_months_long_cycle)


def check_bounds(app: LoanApplication, rules: EligibilityPolicy) -> list[Refusal]:
    """Rules E-9 and E-10 as bounds: the amount within the policy's cap, the term within
    its largest term; empty when both hold."""
    out: list[Refusal] = []
    if app.amount > rules.max_amount:
        out.append(
            Refusal(
                rule="E-9",
                message=f"amount {app.amount:,.2f} exceeds the maximum {rules.max_amount:,.2f}",
                field="amount",
            )
        )
    longest = largest_term(rules)
    if app.term_months > longest:
        out.append(
            Refusal(
                rule="E-10",
                message=f"term {app.term_months} months exceeds the maximum {longest} months, "
                "the longest term the policy allows any loan",
                field="term_months",
            )
        )
    return out
