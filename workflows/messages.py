"""Inputs and outputs of the loan workflow: one model per workflow, update and query.

Plain pydantic snapshots (no Temporal import), shared by the workflow and the API.
Fields are added with defaults so running loans keep decoding their history.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from activities.register import TaskSpec
from domain.errors import Refusal
from domain.loan import (
    Actor,
    ApprovedTerms,
    ContractSigning,
    CreditReport,
    Decision,
    Installment,
    InvestigationReport,
    LoanApplication,
    Material,
    Review,
    Role,
    Stage,
    Tier,
)
from domain.policy import Policy


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


def workflow_id_for(loan_id: str) -> str:
    return f"loan-{loan_id}"


class ApplyForLoan(_Message):
    """Starts a loan's workflow: the application as received, pinned to one policy version."""

    loan_id: str
    application: LoanApplication
    branch_code: str
    prefecture_code: str | None
    officer: Actor  # the loan officer who took the application (管户客户经理)
    applied_at: datetime
    policy: Policy


class SupplyMaterials(_Message):
    actor: Actor
    materials: list[Material] = Field(min_length=1)


class SubmitInvestigation(_Message):
    actor: Actor
    report: InvestigationReport
    task_key: str | None = None


class SubmitReview(_Message):
    """A reviewer's opinion, at the county (审查) or the prefecture (二级分行审查)."""

    actor: Actor
    review: Review


class ConfirmAsBranchHead(_Message):
    """The branch head's confirmation on the prefecture route (A-2)."""

    actor: Actor
    review: Review


class DecideLoan(_Message):
    actor: Actor
    decision: Decision


class SignContract(_Message):
    actor: Actor
    signing: ContractSigning


class WithdrawApplication(_Message):
    """The borrower withdraws; a loan officer records it (before disbursement)."""

    actor: Actor
    reason: str = Field(min_length=1, max_length=500)


class ReportView(_Message):
    officer: str
    submitted_at: datetime
    report: InvestigationReport


class StepRecord(_Message):
    """A review, confirmation or decision as the workflow accepted it (H-2)."""

    step: str
    actor: str
    role: Role
    at: datetime
    outcome: str
    comment: str


class LoanStatus(_Message):
    """What the workflow knows about the loan now (a query; also each update's result)."""

    loan_id: str
    stage: Stage
    branch_code: str
    prefecture_code: str | None
    officer: str
    tier: Tier
    round: int
    policy_version: str
    applied_at: datetime
    amount_requested: Decimal
    term_months: int
    materials_missing: list[Material]
    decision_due: date | None
    sla_breached: bool
    # I-1 blind: only who has reported, until both reports are in.
    investigators_reported: list[str]
    reports: list[ReportView]
    discrepancies: list[str]
    steps: list[StepRecord]
    credit_report: CreditReport | None
    approved: ApprovedTerms | None
    signing_deadline: date | None
    signing: ContractSigning | None
    disbursed_at: datetime | None
    maturity_date: date | None
    schedule: list[Installment]
    outcome_reasons: list[Refusal]
    open_tasks: list[TaskSpec]


class LoanOutcome(_Message):
    loan_id: str
    stage: Stage
    reasons: list[Refusal]
