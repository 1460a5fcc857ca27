"""Inputs and outputs of the loan workflow: one model per workflow, update and query.

Plain pydantic snapshots (no Temporal import), shared by the workflow and the API.
Fields are added with defaults so running loans keep decoding their history.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from activities.register import TaskSpec
from domain.calendar import CalendarYear
from domain.classification import ScoreEvent
from domain.collection import Rung
from domain.errors import Refusal
from domain.extension import ExtensionRequest
from domain.inspection import InspectionFindings, WarningMeasure, WarningSignal
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
    RepaymentMethod,
    Review,
    Role,
    Stage,
    Tier,
)
from domain.policy import Policy
from domain.servicing import LoanBook, Repaid
from domain.text import CommentText, Text


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


def workflow_id_for(loan_id: str) -> str:
    return f"loan-{loan_id}"


class ApplyForLoan(_Message):
    """Starts a loan's workflow: the application as received, pinned to one policy version."""

    loan_id: Text
    application: LoanApplication
    branch_code: Text
    prefecture_code: Text | None
    officer: Actor  # the loan officer who took the application (管户客户经理)
    applied_at: datetime
    policy: Policy


class SupplyMaterials(_Message):
    actor: Actor
    materials: list[Material] = Field(min_length=1)


class SubmitInvestigation(_Message):
    actor: Actor
    report: InvestigationReport
    task_key: Text | None = None


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
    reason: CommentText = Field(min_length=1, max_length=500)


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


class CollectionStep(_Message):
    """A D-1 rung reached: the officer's task and what was done (催收记录)."""

    task_key: str
    rung: Rung
    required_actions: list[str]  # what the rung asks for (D-1)
    opened_on: date
    due_on: date
    done_on: date | None = None
    done_by: str | None = None
    actions: list[str] = Field(default_factory=list)
    outcome: str = ""


class NoticeRecord(_Message):
    """A D-2/D-3 overdue notice (逾期贷款催收通知书) with its receipt (回执)."""

    notice_key: str
    sent_on: date
    recipients: list[str]  # borrower and guarantors, by name
    receipt_on: date | None = None
    receipt_task_opened: bool = False
    follow_up: str = ""  # what was done when no receipt came back (D-3)
    closed: bool = False  # the arrears were repaid: no receipt is awaited any more


class InspectionRecord(_Message):
    """A post-loan check (贷后检查, K-1..K-5): due, then reported."""

    task_key: str
    kind: Literal["first", "routine", "special", "village"]
    due_on: date
    done_on: date | None = None
    done_by: str | None = None
    findings: InspectionFindings | None = None


class WarningRecord(_Message):
    """A W-1 signal and the W-2 head's measure; unresolved ones escalate."""

    task_key: str
    signal: WarningSignal
    raised_on: date
    raised_by: str  # a username, or "workflow" for overdue and downgrade
    note: str = ""
    respond_by: date
    escalate_by: date
    escalated: bool = False
    measure: WarningMeasure | None = None
    decided_by: str | None = None
    decided_on: date | None = None


class PrepaymentRecord(_Message):
    """A P-4 prepayment: asked for, consented to (or not), and what it settled."""

    task_key: str
    amount: Money
    requested_on: date
    requested_by: str
    consent: bool | None = None  # None: awaiting the head's consent
    decided_by: str | None = None
    done_on: date | None = None
    outcome: str = ""
    principal_prepaid: Money = Decimal("0")
    interest: Money = Decimal("0")
    fee: Money = Decimal("0")


class WriteOffRecord(_Message):
    """Z-1 核销: proposed for a 损失 loan, approved at the credit-management tier."""

    task_key: str
    proposed_on: date
    proposed_by: str
    reason: str
    approved: bool | None = None
    decided_by: str | None = None
    decided_on: date | None = None
    principal: Money = Decimal("0")  # taken off the balance sheet
    recovered: Money = Decimal("0")  # 核销后收回, principal and interest


class ExtensionRecord(_Message):
    """An extension (展期, X-1..X-7): requested, decided on the original's route, signed."""

    key_prefix: str
    requested_on: date
    requested_by: str
    request: ExtensionRequest
    route: list[Stage]  # the original loan's decision route
    at: Stage | None  # the step waiting; None once decided
    reviewers: list[str] = Field(default_factory=list)
    steps: list[StepRecord] = Field(default_factory=list)
    outcome: Literal["pending", "approved", "signed", "refused", "lapsed"] = "pending"
    months: int | None = None  # as approved
    annual_rate: Decimal | None = None
    repayment_method: RepaymentMethod | None = None
    new_maturity: date | None = None
    signed_on: date | None = None
    agreement_number: str | None = None


class HandoverRecord(_Message):
    """H-1 责任移交: the loan moved from one officer to another, signed by both and a head."""

    from_officer: str
    to_officer: str
    signed_by_head: str
    on: date


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
    overdue_since: date | None = None
    called_in_on: date | None = None
    score: int | None = None  # internal (H-3): never shown to the borrower
    blacklisted: bool = False
    collection: list[CollectionStep] = Field(default_factory=list)
    notices: list[NoticeRecord] = Field(default_factory=list)
    inspections: list[InspectionRecord] = Field(default_factory=list)
    warnings: list[WarningRecord] = Field(default_factory=list)
    prepayments: list[PrepaymentRecord] = Field(default_factory=list)
    write_off: WriteOffRecord | None = None
    extensions: list[ExtensionRecord] = Field(default_factory=list)
    handovers: list[HandoverRecord] = Field(default_factory=list)


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
    payment_update_ids: list[str] = Field(default_factory=list)  # runs before issue 9 only
    payment_references: list[str] = Field(default_factory=list)  # receipts taken (P-2)
    step_ids: list[str] = Field(default_factory=list)  # applied steps, see domain/step_keys.py
    reminders_sent: list[str] = Field(default_factory=list)  # of the coming due date
    score_events: list[ScoreEvent] = Field(default_factory=list)  # F-2, once per loan
    judged_class: LoanClass | None = None  # F-1 judgement (never better than the floor)
    extended: bool = False
    closed_on: date | None = None  # P-7
    final_evaluation: str | None = None  # P-7
    overdue_since: date | None = None  # the first day of the current arrears (D-1, D-2)
    collection: list[CollectionStep] = Field(default_factory=list)
    notices: list[NoticeRecord] = Field(default_factory=list)
    inspections: list[InspectionRecord] = Field(default_factory=list)
    warnings: list[WarningRecord] = Field(default_factory=list)
    judgement_reason: str = ""  # F-1: why a reviewer put the loan lower
    blacklisted: bool = False  # D-5
    score: int | None = None  # the household's score after F-2 events (None: the rating's)
    reviewed_dpd: int = 0  # days past due at the last review: the next band is after it (F-3)
    noticed_overdue: int = 0  # overdue installments the D-2 notices have covered
    prepayments: list[PrepaymentRecord] = Field(default_factory=list)
    write_off: WriteOffRecord | None = None
    extensions: list[ExtensionRecord] = Field(default_factory=list)
    handovers: list[HandoverRecord] = Field(default_factory=list)
    # years of published data (official, a holiday table) the loan's deadlines counted
    # on, kept for its life; computed years are resolved again in each run.
    calendar_years: list[CalendarYear] = Field(default_factory=list)


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
    reference: Text = Field(default="", max_length=64)  # the counter's receipt number


class SubmitFinalEvaluation(_Message):
    """P-7: the officer's final evaluation note on a repaid loan; the archive then closes."""

    actor: Actor
    evaluation: CommentText = Field(min_length=1, max_length=2000)


class RecordCollectionAction(_Message):
    """D-1: what the officer did on a rung of the ladder (phone, visit, notice, plan)."""

    actor: Actor
    task_key: Text
    actions: list[Text] = Field(min_length=1, max_length=10)
    outcome: CommentText = Field(min_length=1, max_length=2000)


class RecordNoticeReceipt(_Message):
    """D-3: the signed receipt (回执) of an overdue notice came back."""

    actor: Actor
    notice_key: Text
    received_on: date


class ReportInspection(_Message):
    """K-5: a post-loan check's report (贷后检查报告)."""

    actor: Actor
    task_key: Text
    findings: InspectionFindings


class RaiseWarning(_Message):
    """W-1: an officer raises a warning signal at any time."""

    actor: Actor
    signal: WarningSignal
    note: CommentText = Field(min_length=1, max_length=2000)


class DecideWarning(_Message):
    """W-2: the head's (or, escalated, credit management's) measure on a signal."""

    actor: Actor
    task_key: Text
    measure: WarningMeasure
    note: CommentText = Field(min_length=1, max_length=2000)


class ClassifyLoan(_Message):
    """F-1: a reviewer puts the loan in a lower class than days past due give, with reason."""

    actor: Actor
    loan_class: LoanClass
    reason: CommentText = Field(min_length=1, max_length=2000)


class MarkWilfulDefault(_Message):
    """D-5: the branch head finds the borrower a wilful defaulter (恶意逃废债); blacklisted."""

    actor: Actor
    reason: CommentText = Field(min_length=1, max_length=2000)


class RequestPrepayment(_Message):
    """P-4: the borrower asks to prepay ``amount`` (partly or in full); the officer records it."""

    actor: Actor
    amount: Money = Field(gt=0)


class DecidePrepayment(_Message):
    """P-4: the cooperative's consent (or refusal), given by the branch head."""

    actor: Actor
    consent: bool
    note: CommentText = Field(min_length=1, max_length=2000)


class ProposeWriteOff(_Message):
    """Z-1: the post-loan manager proposes writing off a 损失 loan."""

    actor: Actor
    reason: CommentText = Field(min_length=1, max_length=2000)


class DecideWriteOff(_Message):
    """Z-1: the credit-management tier (the prefecture's approver) approves or refuses."""

    actor: Actor
    approve: bool
    note: CommentText = Field(min_length=1, max_length=2000)


class RequestExtension(_Message):
    """X-1: the borrower's request for an extension, with the guarantor's written consent."""

    actor: Actor
    months: int = Field(gt=0, le=120)
    reason: CommentText = Field(min_length=1, max_length=2000)
    guarantor_consent: bool


class HandOver(_Message):
    """H-1: the supervising head signs the handover of the loan to a successor officer; the
    leaving officer and the successor have signed it too."""

    actor: Actor
    successor: Actor
    leaving_officer_signed: bool
    successor_signed: bool


class BeginServicing(_Message):
    """Moves a loan paid out before servicing existed into post-loan management."""

    reason: CommentText = Field(default="servicing introduced", max_length=200)
