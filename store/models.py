"""Read-model and adapter tables (SQLModel). Money is integer fen; rates are decimal text.

These rows are projections and adapter state; the loan's truth is its workflow.
Never pass a row into a workflow: activities load and save by id.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel

# Named constraints, so later (SQLite batch) migrations can alter them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _created_ts() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


def _optional_ts() -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


def _fen(nullable: bool = False) -> Any:
    return Field(default=None if nullable else 0, sa_column=Column(BigInteger, nullable=nullable))


class Branch(SQLModel, table=True):
    """A county branch (县级支行) or prefecture branch (二级分行)."""

    __tablename__ = "branches"
    code: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=100)
    tier: str = Field(max_length=16)
    parent_code: str | None = Field(default=None, foreign_key="branches.code", max_length=16)


class StaffUser(SQLModel, table=True):
    """A member of staff who signs in and acts on loans."""

    __tablename__ = "staff_users"
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=64)
    full_name: str = Field(max_length=100)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=32)
    branch_code: str = Field(foreign_key="branches.code", max_length=16)
    tier: str | None = Field(default=None, max_length=16)
    approval_limit_fen: int | None = _fen(nullable=True)
    household_id: str | None = Field(default=None, max_length=32)
    active: bool = True
    created_at: datetime = _created_ts()


class HouseholdClaim(SQLModel, table=True):
    """E-7: the one open application or loan a household may hold. The primary key is the lock."""

    __tablename__ = "household_claims"
    household_id: str = Field(primary_key=True, max_length=32)
    loan_id: str = Field(max_length=40)
    claimed_at: datetime = _created_ts()


class ApplicationRequest(SQLModel, table=True):
    """An application as first received under its idempotency key (issue 9): the same key
    from the same officer never starts a second loan; with another request it is refused."""

    __tablename__ = "application_requests"
    officer_username: str = Field(primary_key=True, max_length=64)
    request_key: str = Field(primary_key=True, max_length=120)
    fingerprint: str = Field(max_length=16)
    loan_id: str = Field(max_length=40)
    received_at: datetime = _created_ts()


class BatchRequest(SQLModel, table=True):
    """A step over many loans (a handover) under its idempotency key (issue 9): the first
    request's answer, kept so a resend answers the same whatever the loans have become.
    ``answer`` is empty while the first request is still at work."""

    __tablename__ = "batch_requests"
    username: str = Field(primary_key=True, max_length=64)
    request_key: str = Field(primary_key=True, max_length=120)
    fingerprint: str = Field(max_length=16)
    answer: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    received_at: datetime = _created_ts()


class GroupMembership(SQLModel, table=True):
    """E-12: a household belongs to at most one open joint-liability group (联保小组)."""

    __tablename__ = "group_memberships"
    household_id: str = Field(primary_key=True, max_length=32)
    loan_id: str = Field(index=True, max_length=40)


class LoanRecord(SQLModel, table=True):
    """The loan register (贷款台账): one row per loan, written by the workflow's projections."""

    __tablename__ = "loans"
    loan_id: str = Field(primary_key=True, max_length=40)
    revision: int = 0  # projections with a lower revision never overwrite a newer one
    stage: str = Field(index=True, max_length=32)
    branch_code: str = Field(index=True, max_length=16)
    prefecture_code: str | None = Field(default=None, max_length=16)
    officer_username: str = Field(index=True, max_length=64)
    applicant_name: str = Field(max_length=100)
    id_number_masked: str = Field(max_length=32)
    phone_masked: str = Field(max_length=20)
    household_id: str = Field(index=True, max_length=32)
    village: str = Field(max_length=100)
    purpose: str = Field(max_length=32)
    guarantee_type: str = Field(max_length=16)
    repayment_method: str = Field(max_length=32)
    amount_requested_fen: int = _fen()
    amount_approved_fen: int | None = _fen(nullable=True)
    term_months: int
    annual_rate: str | None = Field(default=None, max_length=16)
    policy_version: str = Field(max_length=32)
    applied_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    decision_due: date | None = None
    sla_breached: bool = False
    decided_at: datetime | None = _optional_ts()
    disbursed_at: datetime | None = _optional_ts()
    maturity_date: date | None = None
    # Post-loan management (贷后管理): class F-1, bucket D-4, and the balances.
    loan_class: str | None = Field(default=None, index=True, max_length=16)
    bucket: str | None = Field(default=None, index=True, max_length=8)
    days_past_due: int = 0
    principal_outstanding_fen: int | None = _fen(nullable=True)
    arrears_fen: int | None = _fen(nullable=True)
    next_due_date: date | None = None
    closed_at: datetime | None = _optional_ts()
    outcome_reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    updated_at: datetime = _created_ts()


class LoanAccountRecord(SQLModel, table=True):
    """A serviced loan's account (分户账) as its workflow last projected it: the book, rate,
    judged class and pinned policy (``domain.servicing.AccountAsOf``), from which readers
    compute the figures as of their own day. Kept apart from the register row, so lists
    and joins that do not show figures never load it."""

    __tablename__ = "loan_accounts"
    loan_id: str = Field(primary_key=True, foreign_key="loans.loan_id", max_length=40)
    as_of: date  # the workflow's day when it wrote the account
    account: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class Task(SQLModel, table=True):
    """A human step waiting in the inbox (待办). Opened and closed by projections only."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_open", "status", "role", "branch_code"),)
    id: int | None = Field(default=None, primary_key=True)
    task_key: str = Field(unique=True, max_length=120)
    loan_id: str = Field(index=True, max_length=40)
    kind: str = Field(max_length=40)
    role: str = Field(max_length=32)
    branch_code: str = Field(max_length=16)
    min_approval_limit_fen: int | None = _fen(nullable=True)
    excluded_usernames: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    claimed_by: str | None = Field(default=None, max_length=64)
    status: str = Field(default="open", max_length=16)
    due_date: date | None = None
    created_at: datetime = _created_ts()
    closed_at: datetime | None = _optional_ts()


class ScheduledInstallment(SQLModel, table=True):
    """One line of a loan's fixed repayment schedule (还款计划), C-4."""

    __tablename__ = "schedule_installments"
    loan_id: str = Field(primary_key=True, max_length=40)
    number: int = Field(primary_key=True)
    due_date: date
    principal_fen: int = _fen()
    interest_fen: int = _fen()
    payment_fen: int = _fen()
    remaining_principal_fen: int = _fen()
    days: int


class JournalEntry(SQLModel, table=True):
    """A balanced double-entry posting (记账凭证); the idempotency key makes retries harmless."""

    __tablename__ = "journal_entries"
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=200)
    loan_id: str | None = Field(default=None, index=True, max_length=40)
    kind: str = Field(max_length=40)
    memo: str = Field(default="", max_length=200)
    value_date: date | None = None  # the business day the entry belongs to (起息日)
    posted_at: datetime = _created_ts()


class JournalLine(SQLModel, table=True):
    """One side of an entry; exactly one of debit and credit is non-zero."""

    __tablename__ = "journal_lines"
    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="journal_entries.id", index=True)
    account_code: str = Field(index=True, max_length=40)
    loan_id: str | None = Field(default=None, index=True, max_length=40)
    debit_fen: int = _fen()
    credit_fen: int = _fen()


class Notification(SQLModel, table=True):
    """The outbox: every SMS, staff reminder or printed notice, written once per idempotency key."""

    __tablename__ = "notifications"
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=200)
    loan_id: str | None = Field(default=None, index=True, max_length=40)
    channel: str = Field(max_length=16)  # sms | staff | print
    recipient: str = Field(max_length=64)  # delivery address; shown masked in lists (H-3)
    recipient_masked: str = Field(max_length=64)
    template: str = Field(max_length=64)
    body: str
    # SMS delivery (issue 4): queued -> delivered | failed, after ``attempts`` gateway posts.
    status: str = Field(default="queued", max_length=16)
    attempts: int = 0
    gateway_message_id: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=500)
    delivered_at: datetime | None = _optional_ts()
    created_at: datetime = _created_ts()


class CreditStandingRecord(SQLModel, table=True):
    """The household's credit score register (信用等级档案), lowered by F-2 events."""

    __tablename__ = "credit_standings"
    household_id: str = Field(primary_key=True, max_length=32)
    score: int
    grade_floor_c_until: date | None = None
    no_upgrade_until: date | None = None
    no_grading_until: date | None = None
    updated_at: datetime = _created_ts()


class CreditEventRecord(SQLModel, table=True):
    """One F-2 event applied to a household's score; the key makes a retry harmless."""

    __tablename__ = "credit_events"
    idempotency_key: str = Field(primary_key=True, max_length=200)
    household_id: str = Field(index=True, max_length=32)
    loan_id: str = Field(index=True, max_length=40)
    event: str = Field(max_length=32)
    occurred_on: date
    score_before: int
    score_after: int
    recorded_at: datetime = _created_ts()


class BlacklistEntry(SQLModel, table=True):
    """D-5: a wilful defaulter's household; intake refuses it (E-6)."""

    __tablename__ = "blacklist"
    household_id: str = Field(primary_key=True, max_length=32)
    loan_id: str = Field(max_length=40)
    reason: str = Field(max_length=500)
    listed_by: str = Field(max_length=64)
    listed_at: datetime = _created_ts()


class NoticeCounter(SQLModel, table=True):
    """The last notice number a branch gave in a year: official numbers run without gaps."""

    __tablename__ = "notice_counters"
    branch_code: str = Field(primary_key=True, max_length=16)
    year: int = Field(primary_key=True)
    last_number: int = 0


class Notice(SQLModel, table=True):
    """An official notice (通知书) as issued: numbered, its HTML kept as the evidence.

    A notice that needs a signed receipt (回执, D-3) is marked when the receipt comes back.
    """

    __tablename__ = "notices"
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=40)  # e.g. CB01-2026-000017
    idempotency_key: str = Field(unique=True, max_length=200)
    loan_id: str | None = Field(default=None, index=True, max_length=40)
    branch_code: str = Field(index=True, max_length=16)
    kind: str = Field(max_length=40)  # the template: overdue_notice, settlement_certificate, ...
    addressee: str = Field(max_length=100)
    round_key: str | None = Field(default=None, max_length=120)  # the workflow's D-3 notice key
    issued_on: date
    issued_by: str = Field(max_length=64)  # a username, or "workflow"
    html: str = Field(sa_column=Column(Text, nullable=False))
    receipt_required: bool = False
    receipt_returned_on: date | None = None
    receipt_recorded_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = _created_ts()


class RevokedToken(SQLModel, table=True):
    """A signed-out session's token (退出登录), refused from then on by its id (jti); the row
    is pruned once the token would have expired anyway."""

    __tablename__ = "revoked_tokens"
    jti: str = Field(primary_key=True, max_length=64)
    username: str = Field(max_length=64)
    expires_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )
    revoked_at: datetime = _created_ts()
