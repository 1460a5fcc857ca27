"""Inputs and outputs of the loan workflow: one model per workflow, update and query.

Plain pydantic snapshots (no Temporal import), shared by the workflow and the API.
Fields are added with defaults so running loans keep decoding their history.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from activities.register import TaskSpec
from domain.classification import ScoreEvent
from domain.errors import Refusal
from domain.loan import (
    Actor,
    ApprovedTerms,
    Bucket,
    ContractSigning,
    CreditReport,
    Decision,
    Installment,
    InvestigationReport,
    LoanApplication,
    LoanClass,
    Material,
    Money,
    Review,
    Role,
    Stage,
    Tier,
)
from domain.policy import Policy
from domain.servicing import LoanBook, Repaid


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


class ServicingView(_Message):
    """Post-loan management (贷后管理) as of now: where the loan stands and what it owes."""

    today: date
    days_past_due: int
    loan_class: LoanClass
    bucket: Bucket
    principal_outstanding: Money
    arrears: Money  # overdue principal and interest, penalty and compound interest
    penalty_interest: Money
    compound_interest: Money
    next_due_date: date | None
    next_payment: Money | None
    installments_overdue: int
    repaid: Repaid
    payments: int
    closed_on: date | None
    final_evaluation: str | None


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
    decided_at: datetime | None = None
    servicing: ServicingView | None = None
    closed_at: datetime | None = None


class LoanOutcome(_Message):
    loan_id: str
    stage: Stage
    reasons: list[Refusal]


class ServicingState(_Message):
    """What post-loan management remembers besides the book, carried across runs."""

    revision: int  # of the register projection: every run goes on counting
    payments: int = 0  # payments taken so far; numbers their idempotency keys
    reminders_sent: list[str] = Field(default_factory=list)  # of the coming due date
    score_events: list[ScoreEvent] = Field(default_factory=list)  # F-2, once per loan
    judged_class: LoanClass | None = None  # F-1 judgement (never better than the floor)
    extended: bool = False
    closed_on: date | None = None  # P-7
    final_evaluation: str | None = None  # P-7


class ServiceLoan(_Message):
    """Starts (and continues) post-loan management of a disbursed loan (贷后管理).

    The loan's workflow continues as new with this input after disbursement and after
    every due date, so each run's history stays short however long the loan runs.
    """

    origination: LoanStatus  # the loan as it stood when it was paid out
    application: LoanApplication
    officer: Actor
    policy: Policy
    book: LoanBook
    state: ServicingState


class RecordPayment(_Message):
    """A teller takes a repayment at the counter into the settlement account (P-2, P-6)."""

    actor: Actor
    amount: Money = Field(gt=0)
    reference: str = Field(default="", max_length=64)  # the counter's receipt number


class SubmitFinalEvaluation(_Message):
    """P-7: the officer's final evaluation note on a repaid loan; the archive then closes."""

    actor: Actor
    evaluation: str = Field(min_length=1, max_length=2000)


class BeginServicing(_Message):
    """Moves a loan paid out before servicing existed into post-loan management."""

    reason: str = Field(default="servicing introduced", max_length=200)
