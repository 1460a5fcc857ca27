"""Pre-loan investigation (贷前调查), rules I-1..I-5.

Two officers each file a report (I-1); a report must be complete for the loan's
guarantee type (I-2, I-3); the reviewer sees where the two disagree (I-5).
"""

from __future__ import annotations

from domain.eligibility import percent, yuan
from domain.errors import Refusal
from domain.loan import GuaranteeType, InvestigationReport, LoanApplication, Recommendation
from domain.policy import InvestigationPolicy

_NEEDS_GUARANTOR = frozenset({GuaranteeType.GUARANTEE, GuaranteeType.GROUP})


def check_report(report: InvestigationReport, app: LoanApplication) -> list[Refusal]:
    """Rules I-1..I-3 on one officer's report; every gap listed."""
    out: list[Refusal] = []
    if not report.interview_confirmed_by_borrower:
        out.append(
            Refusal(
                rule="I-1",
                message="the borrower has not confirmed the interview record (面谈记录)",
                field="report.interview_confirmed_by_borrower",
            )
        )
    if not report.family_consent_recorded:
        out.append(
            Refusal(
                rule="I-3",
                message="the household members' consent is not recorded",
                field="report.family_consent_recorded",
            )
        )
    if app.guarantee_type in _NEEDS_GUARANTOR and not report.guarantor_assessment:
        out.append(
            Refusal(
                rule="I-2",
                message=f"a {app.guarantee_type} loan needs an assessment of the guarantors' "
                "ability to pay",
                field="report.guarantor_assessment",
            )
        )
    if app.guarantee_type.secured and not report.collateral_assessment:
        out.append(
            Refusal(
                rule="I-2",
                message=f"a {app.guarantee_type} loan needs an assessment of the collateral's "
                "title, location and liquidity",
                field="report.collateral_assessment",
            )
        )
    if report.recommendation is not Recommendation.REJECT:
        for flag, what in (
            ("materials_genuine", "the materials are not genuine"),
            ("purpose_legal", "the purpose is not legal"),
        ):
            if not getattr(report, flag):
                out.append(
                    Refusal(
                        rule="I-2",
                        message=f"the report finds {what} yet recommends lending",
                        field=f"report.{flag}",
                    )
                )
    if report.amount is not None and report.amount > app.amount:
        out.append(
            Refusal(
                rule="I-2",
                message=f"proposed amount {yuan(report.amount)} exceeds the requested "
                f"{yuan(app.amount)}",
                field="report.amount",
            )
        )
    if report.term_months is not None and report.term_months > app.term_months:
        out.append(
            Refusal(
                rule="I-2",
                message=f"proposed term {report.term_months} months exceeds the requested "
                f"{app.term_months} months",
                field="report.term_months",
            )
        )
    if report.recommendation is Recommendation.REDUCE:
        lower_amount = report.amount is not None and report.amount < app.amount
        shorter_term = report.term_months is not None and report.term_months < app.term_months
        if not (lower_amount or shorter_term):
            out.append(
                Refusal(
                    rule="I-2",
                    message="a recommendation to reduce must propose a lower amount than "
                    f"{yuan(app.amount)} or a shorter term than {app.term_months} months",
                    field="report.recommendation",
                )
            )
    return out


def discrepancies(
    first: InvestigationReport, second: InvestigationReport, policy: InvestigationPolicy
) -> list[str]:
    """Where the two reports disagree, one readable line each (rule I-5); empty when they agree."""
    out: list[str] = []
    if first.recommendation is not second.recommendation:
        out.append(
            f"recommendations differ: first report {first.recommendation}, "
            f"second report {second.recommendation}"
        )
    if first.amount is not None and second.amount is not None:
        # Measured on the smaller proposal: "the larger is more than 20% above the smaller",
        # the reading that flags rather than hides a disagreement.
        gap = abs(first.amount - second.amount)
        relative = gap / min(first.amount, second.amount)
        if relative > policy.investigation_tolerance:
            out.append(
                f"proposed amounts differ by {relative * 100:.1f}% (more than the "
                f"{percent(policy.investigation_tolerance)} tolerance): "
                f"{yuan(first.amount)} vs {yuan(second.amount)}"
            )
    if (
        first.term_months is not None
        and second.term_months is not None
        and first.term_months != second.term_months
    ):
        out.append(
            f"proposed terms differ: {first.term_months} months vs {second.term_months} months"
        )
    return out
