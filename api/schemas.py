"""What the API returns: public views of the read models (no table row leaves the API as is)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from domain.loan import Stage
from workflows.messages import LoanStatus


def _utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class LoanCreated(BaseModel):
    loan_id: str
    workflow_id: str
    policy_version: str
    stage: Stage


class LoanSummary(BaseModel):
    """A line of the loan register (台账); personal numbers masked (H-3)."""

    loan_id: str
    stage: str
    branch_code: str
    officer: str
    applicant_name: str
    id_number: str
    phone: str
    village: str
    purpose: str
    guarantee_type: str
    repayment_method: str
    amount_requested: Decimal
    amount_approved: Decimal | None
    term_months: int
    annual_rate: Decimal | None
    policy_version: str
    applied_at: UtcDatetime
    decision_due: date | None
    sla_breached: bool
    decided_at: UtcDatetime | None
    disbursed_at: UtcDatetime | None
    maturity_date: date | None
    outcome_reasons: list[dict[str, Any]]
    # Post-loan management (贷后管理): none of these until the loan is paid out. Class,
    # bucket, days past due and arrears are as of today (China), as are penalty and
    # compound interest (P-5; none for a loan whose account the register does not hold).
    loan_class: str | None = None  # F-1 five-level class
    bucket: str | None = None  # D-4 days-past-due bucket
    days_past_due: int = 0
    principal_outstanding: Decimal | None = None
    arrears: Decimal | None = None
    penalty_interest: Decimal | None = None
    compound_interest: Decimal | None = None
    next_due_date: date | None = None
    closed_at: UtcDatetime | None = None


class LoanDetail(BaseModel):
    loan: LoanSummary | None  # the register's line; None until intake has written it
    workflow: LoanStatus | None  # what the workflow knows now; None once its history is purged


class LoanWorkflowView(BaseModel):
    """A loan as Temporal's visibility lists it, by its search attributes."""

    loan_id: str
    workflow_id: str
    status: str
    stage: str | None
    branch: str | None
    pending_role: str | None
    officer: str | None
    started_at: UtcDatetime


class TaskView(BaseModel):
    """A task in someone's inbox (待办)."""

    id: int
    task_key: str
    loan_id: str
    kind: str
    role: str
    branch_code: str
    claimed_by: str | None
    status: str
    due_date: date | None
    overdue: bool
    created_at: UtcDatetime
    applicant_name: str
    amount_requested: Decimal
    stage: str
    step_endpoint: str


class NotificationView(BaseModel):
    id: int
    loan_id: str | None
    channel: str
    recipient: str
    template: str
    body: str
    status: str  # an SMS: queued, then delivered or failed
    attempts: int  # gateway posts so far
    last_error: str | None  # masked (H-3)
    delivered_at: UtcDatetime | None
    created_at: UtcDatetime


class AuditEvent(BaseModel):
    """One entry of a loan's audit trail, read from its workflow history (H-2).

    A loan's workflow continues as new after disbursement and when a run grows long, so
    an entry is located by its run and the event's id within that run; ``history_url``
    opens that run's raw history in the Temporal Web UI. ``kind`` is application,
    human_step, automatic, signal, outcome or notice."""

    run_id: str
    event_id: int
    time: UtcDatetime
    kind: str
    step: str
    rule: str | None = None
    actor: str | None = None
    role: str | None = None
    decision: str | None = None
    comment: str | None = None
    policy_version: str
    accepted: bool = True  # False: accepted, then refused when applied, or an effect failed
    details: dict[str, Any] = Field(default_factory=dict)
    history_url: str | None = None


class VillageHousehold(BaseModel):
    """A household of a K-2 village batch: its micro-credit loan's routine check."""

    loan_id: str
    household_id: str
    borrower_name: str
    task_key: str
    due_on: date


class VillageBatch(BaseModel):
    """K-2: one village's routine checks, done in one visit; due when the earliest is."""

    village: str
    due_on: date
    households: list[VillageHousehold]


class StepResult(BaseModel):
    """One loan's answer within a batch of steps: its state, or the refusal with its rule."""

    loan_id: str
    task_key: str
    ok: bool
    status_code: int
    loan: LoanStatus | None = None  # the loan after the step, when accepted
    message: str | None = None
    rule: str | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)


class VillageReportsResult(BaseModel):
    village: str
    accepted: int
    refused: int
    results: list[StepResult]


class HandoverResult(BaseModel):
    """H-1: one signed handover, and what became of each of the leaving officer's loans."""

    from_officer: str
    to_officer: str
    signed_by_head: str
    moved: int
    refused: int
    results: list[StepResult]
