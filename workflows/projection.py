"""The register row (台账) of a loan, built from what its workflow knows (both phases)."""

from __future__ import annotations

from temporalio.common import SearchAttributeUpdate

from activities.register import LoanProjection
from domain.ids import mask_id_number, mask_phone
from domain.loan import LoanApplication
from domain.servicing import AccountAsOf
from workflows.messages import LoanStatus
from workflows.search_attributes import LOAN_BRANCH, LOAN_OFFICER, LOAN_STAGE, PENDING_ROLE


def loan_search_attributes(status: LoanStatus) -> list[SearchAttributeUpdate]:
    """What Temporal's own list of loans filters on: stage, branch, officer, who acts next."""
    return [
        LOAN_STAGE.value_set(status.stage.value),
        LOAN_BRANCH.value_set(status.branch_code),
        LOAN_OFFICER.value_set(status.officer),
        PENDING_ROLE.value_set(status.open_tasks[0].role.value if status.open_tasks else ""),
    ]


def loan_projection(
    status: LoanStatus,
    app: LoanApplication,
    revision: int,
    account: AccountAsOf | None = None,
) -> LoanProjection:
    """Everything the register shows, masked (H-3); a newer revision always wins. The
    account (post-loan management only) lets readers bring the figures to their own day."""
    approved = status.approved
    servicing = status.servicing
    return LoanProjection(
        loan_id=status.loan_id,
        revision=revision,
        stage=status.stage,
        branch_code=status.branch_code,
        prefecture_code=status.prefecture_code,
        officer_username=status.officer,
        applicant_name=app.applicant.name,
        id_number_masked=mask_id_number(app.applicant.id_number),
        phone_masked=mask_phone(app.applicant.phone),
        household_id=app.applicant.household_id,
        village=app.applicant.village,
        purpose=app.purpose,
        guarantee_type=app.guarantee_type,
        repayment_method=app.repayment_method,
        amount_requested=app.amount,
        amount_approved=approved.amount if approved else None,
        term_months=approved.term_months if approved else app.term_months,
        annual_rate=approved.annual_rate if approved else None,
        policy_version=status.policy_version,
        applied_at=status.applied_at,
        decision_due=status.decision_due,
        sla_breached=status.sla_breached,
        decided_at=status.decided_at,
        disbursed_at=status.disbursed_at,
        maturity_date=status.maturity_date,
        outcome_reasons=status.outcome_reasons,
        open_tasks=status.open_tasks,
        loan_class=servicing.loan_class if servicing else None,
        bucket=servicing.bucket if servicing else None,
        days_past_due=servicing.days_past_due if servicing else 0,
        principal_outstanding=servicing.principal_outstanding if servicing else None,
        arrears=servicing.arrears if servicing else None,
        next_due_date=servicing.next_due_date if servicing else None,
        closed_at=status.closed_at,
        account=account,
    )
