"""Register activities: the household locks (E-7, E-12), the loan register and task inbox,
the household's credit score register (F-2) and the blacklist (D-5).

The loan's truth is its workflow; these activities keep the database's view of it.
Each runs in one transaction and may be retried any number of times.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast

from pydantic import BaseModel, Field
from sqlalchemy import CursorResult, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from temporalio import activity

from domain.calendar import CHINA
from domain.classification import CreditStanding, ScoreEvent, apply_score_event
from domain.errors import Refusal
from domain.ids import mask_pii, mask_pii_deep
from domain.loan import (
    Bucket,
    GuaranteeType,
    HouseholdStanding,
    Installment,
    LoanClass,
    Money,
    Purpose,
    RepaymentMethod,
    Role,
    Stage,
)
from domain.money import from_fen, to_fen
from domain.policy import Policy
from domain.servicing import AccountAsOf
from store.db import SessionFactory
from store.models import (
    BlacklistEntry,
    CreditEventRecord,
    CreditStandingRecord,
    GroupMembership,
    HouseholdClaim,
    LoanAccountRecord,
    LoanRecord,
    ScheduledInstallment,
    StaffUser,
    Task,
)

T = TypeVar("T")

NOT_COUNTED_FOR_SPLITTING = (Stage.REFUSED.value, Stage.REJECTED.value)

_ATTEMPTS = 3


class ClaimHouseholdInput(BaseModel):
    loan_id: str
    household_id: str
    group_household_ids: list[str] = Field(default_factory=list)
    applied_on: date
    split_window_days: int = Field(ge=0)


class ReleaseHouseholdInput(BaseModel):
    loan_id: str
    household_id: str


class TaskSpec(BaseModel):
    """An open human step as the workflow sees it; task_key is unique across loans."""

    task_key: str = Field(max_length=120)
    kind: str
    role: Role
    branch_code: str
    due_date: date | None = None
    min_approval_limit: Money | None = None
    excluded_usernames: list[str] = Field(default_factory=list)
    assignee: str | None = None  # the loan's own officer (管户客户经理); follows a handover (H-1)


class LoanProjection(BaseModel):
    """A snapshot of the loan for the register; revision grows with every change."""

    loan_id: str
    revision: int
    stage: Stage
    branch_code: str
    prefecture_code: str | None
    officer_username: str
    applicant_name: str
    id_number_masked: str
    phone_masked: str
    household_id: str
    village: str
    purpose: Purpose
    guarantee_type: GuaranteeType
    repayment_method: RepaymentMethod
    amount_requested: Money
    amount_approved: Money | None
    term_months: int
    annual_rate: Decimal | None
    policy_version: str
    applied_at: datetime
    decision_due: date | None
    sla_breached: bool
    decided_at: datetime | None
    disbursed_at: datetime | None
    maturity_date: date | None
    outcome_reasons: list[Refusal] = Field(default_factory=list)
    open_tasks: list[TaskSpec] = Field(default_factory=list)
    # Post-loan management (贷后管理). Defaults, so projections in older workflow
    # histories (written before servicing existed) still decode.
    loan_class: LoanClass | None = None  # F-1
    bucket: Bucket | None = None  # D-4
    days_past_due: int = Field(default=0, ge=0)
    principal_outstanding: Money | None = None
    arrears: Money | None = None
    next_due_date: date | None = None
    closed_at: datetime | None = None
    # The account behind the figures, so readers bring them to their own day (当日口径).
    account: AccountAsOf | None = None


class StoreScheduleInput(BaseModel):
    loan_id: str
    installments: list[Installment]


class LateTaskRecipientsInput(BaseModel):
    loan_id: str


class RecordCreditEventInput(BaseModel):
    """One F-2 event for the household's score; the key makes a retry harmless."""

    idempotency_key: str = Field(min_length=1, max_length=200)
    household_id: str = Field(min_length=1, max_length=32)
    loan_id: str = Field(min_length=1, max_length=40)
    event: ScoreEvent
    occurred_on: date
    # The score the application's rating gave (E-4): the start when the register has no row.
    initial_score: int = Field(ge=0, le=100)
    policy: Policy


class BlacklistHouseholdInput(BaseModel):
    household_id: str = Field(min_length=1, max_length=32)
    loan_id: str = Field(min_length=1, max_length=40)
    reason: str = Field(min_length=1, max_length=500)
    listed_by: str = Field(min_length=1, max_length=64)


class HouseholdCreditInput(BaseModel):
    household_id: str


class HouseholdCredit(BaseModel):
    """What the register knows of a household's credit, for intake's E-4 and E-6 checks.

    ``score`` is None when no F-2 event was ever recorded (the application's rating
    stands); the restrictions are those of ``CreditStanding``.
    """

    score: int | None = None
    grade_floor_c_until: date | None = None
    no_upgrade_until: date | None = None
    no_grading_until: date | None = None
    blacklisted: bool = False  # D-5
    blacklist_reason: str | None = None


class _StandingMoved(Exception):
    """Another transaction changed the credit standing between our read and our write."""


def _utc(ts: datetime | None) -> datetime | None:
    # Stored as UTC: SQLite drops the offset, so a +08:00 value would read back wrong.
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _fen_or_none(amount: Decimal | None) -> int | None:
    return None if amount is None else to_fen(amount)


def _standing_of(row: CreditStandingRecord) -> CreditStanding:
    return CreditStanding(
        score=row.score,
        grade_floor_c_until=row.grade_floor_c_until,
        no_upgrade_until=row.no_upgrade_until,
        no_grading_until=row.no_grading_until,
    )


def _store_account(session: Session, loan_id: str, account: AccountAsOf) -> None:
    """The loan's account beside its register row (written under the row's revision check)."""
    session.flush()  # the loan's row first: the account refers to it
    stored = session.get(LoanAccountRecord, loan_id)
    body = account.model_dump(mode="json")
    if stored is None:
        stored = LoanAccountRecord(loan_id=loan_id, as_of=account.as_of, account=body)
    else:
        stored.as_of, stored.account = account.as_of, body
    session.add(stored)


class RegisterActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def _transaction(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction; a unique-key race (or a row changed under a
        compare-and-set) re-reads and tries again."""
        with self._sessions() as session:
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    result = work(session)
                    session.commit()
                    return result
                except (IntegrityError, _StandingMoved):
                    session.rollback()
                    if attempt == _ATTEMPTS:
                        raise
        raise AssertionError("unreachable")

    @activity.defn
    def claim_household(self, inp: ClaimHouseholdInput) -> HouseholdStanding:
        """Claim the household (E-7) and its group (E-12); report recent applications (E-15)."""
        return self._transaction(lambda session: self._claim(session, inp))

    def _claim(self, session: Session, inp: ClaimHouseholdInput) -> HouseholdStanding:
        standing = HouseholdStanding()
        claim = session.get(HouseholdClaim, inp.household_id)
        if claim is not None and claim.loan_id != inp.loan_id:
            standing.claimed_by_other_loan = claim.loan_id  # rule E-7
        elif claim is None:
            session.add(HouseholdClaim(household_id=inp.household_id, loan_id=inp.loan_id))

        members = sorted(set(inp.group_household_ids))
        held = {
            m.household_id: m.loan_id
            for m in session.exec(
                select(GroupMembership).where(col(GroupMembership.household_id).in_(members))
            ).all()
        }
        standing.group_conflicts = [h for h in members if held.get(h, inp.loan_id) != inp.loan_id]
        if not standing.group_conflicts and standing.claimed_by_other_loan is None:
            for household_id in members:
                if household_id not in held:  # rule E-12
                    session.add(GroupMembership(household_id=household_id, loan_id=inp.loan_id))
        session.flush()

        # rule E-15: the household's other applications within the window. Withdrawn and
        # lapsed ones count (a large application withdrawn and re-made in pieces is the
        # splitting the rule forbids); refused ones never entered the process, and a
        # rejection was decided at its own tier, so neither counts.
        window_start = datetime.combine(
            inp.applied_on - timedelta(days=inp.split_window_days), time.min, CHINA
        )
        window_end = datetime.combine(inp.applied_on + timedelta(days=1), time.min, CHINA)
        recent = session.exec(
            select(LoanRecord.amount_requested_fen)
            .where(
                LoanRecord.household_id == inp.household_id,
                LoanRecord.loan_id != inp.loan_id,
                col(LoanRecord.applied_at) >= window_start,
                col(LoanRecord.applied_at) < window_end,
                col(LoanRecord.stage).not_in(NOT_COUNTED_FOR_SPLITTING),
            )
            .order_by(col(LoanRecord.applied_at), col(LoanRecord.loan_id))
        ).all()
        standing.recent_amounts = [from_fen(fen) for fen in recent]

        # rule A-4: a household that has had a loan paid out is a returning customer.
        standing.returning_customer = (
            session.exec(
                select(LoanRecord.loan_id).where(
                    LoanRecord.household_id == inp.household_id,
                    LoanRecord.loan_id != inp.loan_id,
                    col(LoanRecord.disbursed_at).is_not(None),
                )
            ).first()
            is not None
        )
        return standing

    @activity.defn
    def release_household(self, inp: ReleaseHouseholdInput) -> None:
        """Free the household and its group, only where this loan holds them."""

        def work(session: Session) -> None:
            session.exec(
                delete(HouseholdClaim).where(
                    col(HouseholdClaim.household_id) == inp.household_id,
                    col(HouseholdClaim.loan_id) == inp.loan_id,
                )
            )
            session.exec(delete(GroupMembership).where(col(GroupMembership.loan_id) == inp.loan_id))

        self._transaction(work)

    @activity.defn
    def project_loan(self, inp: LoanProjection) -> None:
        """Write the loan's row and reconcile its open tasks; older revisions are ignored."""
        self._transaction(lambda session: self._project(session, inp))

    def _project(self, session: Session, inp: LoanProjection) -> None:
        now = datetime.now(UTC)
        row = session.get(LoanRecord, inp.loan_id)
        if row is not None and inp.revision <= row.revision:
            # A late retry of an older projection: the newer one already holds.
            return
        fields: dict[str, Any] = {
            "revision": inp.revision,
            "stage": inp.stage.value,
            "branch_code": inp.branch_code,
            "prefecture_code": inp.prefecture_code,
            "officer_username": inp.officer_username,
            "applicant_name": inp.applicant_name,
            "id_number_masked": inp.id_number_masked,
            "phone_masked": inp.phone_masked,
            "household_id": inp.household_id,
            "village": inp.village,
            "purpose": inp.purpose.value,
            "guarantee_type": inp.guarantee_type.value,
            "repayment_method": inp.repayment_method.value,
            "amount_requested_fen": to_fen(inp.amount_requested),
            "amount_approved_fen": _fen_or_none(inp.amount_approved),
            "term_months": inp.term_months,
            "annual_rate": None if inp.annual_rate is None else str(inp.annual_rate),
            "policy_version": inp.policy_version,
            "applied_at": _utc(inp.applied_at),
            "decision_due": inp.decision_due,
            "sla_breached": inp.sla_breached,
            "decided_at": _utc(inp.decided_at),
            "disbursed_at": _utc(inp.disbursed_at),
            "maturity_date": inp.maturity_date,
            "loan_class": None if inp.loan_class is None else inp.loan_class.value,
            "bucket": None if inp.bucket is None else inp.bucket.value,
            "days_past_due": inp.days_past_due,
            "principal_outstanding_fen": _fen_or_none(inp.principal_outstanding),
            "arrears_fen": _fen_or_none(inp.arrears),
            "next_due_date": inp.next_due_date,
            "closed_at": _utc(inp.closed_at),
            # Reasons may quote what staff typed; the register is a list (H-3).
            "outcome_reasons": mask_pii_deep(
                [r.model_dump(mode="json") for r in inp.outcome_reasons]
            ),
            "updated_at": now,
        }
        if row is None:
            row = LoanRecord(loan_id=inp.loan_id, **fields)
        else:
            for name, value in fields.items():
                setattr(row, name, value)
        session.add(row)
        if inp.account is not None:
            _store_account(session, inp.loan_id, inp.account)

        wanted = {spec.task_key: spec for spec in inp.open_tasks}
        existing = {
            t.task_key: t
            for t in session.exec(
                select(Task).where(
                    (col(Task.loan_id) == inp.loan_id) | col(Task.task_key).in_(list(wanted))
                )
            ).all()
        }
        for key, spec in wanted.items():
            task = existing.get(key)
            if task is None:
                session.add(
                    Task(
                        task_key=key,
                        loan_id=inp.loan_id,
                        kind=spec.kind,
                        role=spec.role.value,
                        branch_code=spec.branch_code,
                        min_approval_limit_fen=_fen_or_none(spec.min_approval_limit),
                        excluded_usernames=list(spec.excluded_usernames),
                        due_date=spec.due_date,
                        claimed_by=spec.assignee,
                        status="open",
                        created_at=now,
                    )
                )
            elif task.status == "open":
                # A moved deadline (extension) or a changed exclusion list shows at once.
                task.due_date = spec.due_date
                if spec.assignee is not None:  # H-1: a handover moves the open tasks too
                    task.claimed_by = spec.assignee
                task.min_approval_limit_fen = _fen_or_none(spec.min_approval_limit)
                task.excluded_usernames = list(spec.excluded_usernames)
                session.add(task)
            # A done task is never reopened, even if an old snapshot lists it.
        for key, task in existing.items():
            if task.loan_id == inp.loan_id and task.status == "open" and key not in wanted:
                task.status = "done"
                task.closed_at = now
                session.add(task)
        session.flush()

    @activity.defn
    def store_schedule(self, inp: StoreScheduleInput) -> None:
        """Replace the loan's repayment schedule (C-4); storing it again changes nothing."""

        def work(session: Session) -> None:
            session.exec(
                delete(ScheduledInstallment).where(col(ScheduledInstallment.loan_id) == inp.loan_id)
            )
            for inst in inp.installments:
                session.add(
                    ScheduledInstallment(
                        loan_id=inp.loan_id,
                        number=inst.number,
                        due_date=inst.due_date,
                        principal_fen=to_fen(inst.principal),
                        interest_fen=to_fen(inst.interest),
                        payment_fen=to_fen(inst.payment),
                        remaining_principal_fen=to_fen(inst.remaining_principal),
                        days=inst.days,
                    )
                )
            session.flush()

        self._transaction(work)

    @activity.defn
    def late_task_recipients(self, inp: LateTaskRecipientsInput) -> list[str]:
        """Who to remind of the loan's late tasks: each owner, and the branch heads (rule A-4)."""
        with self._sessions() as session:
            loan = session.get(LoanRecord, inp.loan_id)
            tasks = session.exec(
                select(Task).where(Task.loan_id == inp.loan_id, Task.status == "open")
            ).all()
            # The loan's branch head and the head of each late task's own branch (a task
            # at the prefecture has its head there).
            head_branches = {t.branch_code for t in tasks}
            if loan is not None:
                head_branches.add(loan.branch_code)
            branches = head_branches
            staff = session.exec(
                select(StaffUser).where(
                    col(StaffUser.active).is_(True), col(StaffUser.branch_code).in_(branches)
                )
            ).all()

        recipients: set[str] = set()
        for task in tasks:
            if task.claimed_by:
                recipients.add(task.claimed_by)
                continue
            recipients.update(
                u.username
                for u in staff
                if u.role == task.role
                and u.branch_code == task.branch_code
                and u.username not in task.excluded_usernames
                and (
                    task.min_approval_limit_fen is None
                    or (u.approval_limit_fen or 0) >= task.min_approval_limit_fen
                )
            )
        recipients.update(
            u.username
            for u in staff
            if u.role == Role.BRANCH_HEAD.value and u.branch_code in head_branches
        )
        return sorted(recipients)

    @activity.defn
    def record_credit_event(self, inp: RecordCreditEventInput) -> CreditStanding:
        """Lower the household's credit score for one event (rule F-2) and return the standing.

        Rule F-2: overdue 30-90 days -15 (policy), over 90 days or 次级 -50, 可疑/损失 -60,
        purpose changed without consent -15, funds passed to a third party -30 and no upgrade
        for 2 years, crime grade C and no grading for 5 years; never below 0.

        A household without a row starts from ``initial_score`` (its application's rating).
        The event and the new standing are stored in one transaction under the idempotency
        key: a retry (even a concurrent one) returns the stored standing unchanged.
        """
        return self._transaction(lambda session: self._record_credit_event(session, inp))

    def _record_credit_event(self, session: Session, inp: RecordCreditEventInput) -> CreditStanding:
        now = datetime.now(UTC)
        row = session.exec(
            select(CreditStandingRecord)
            .where(CreditStandingRecord.household_id == inp.household_id)
            .with_for_update()  # PostgreSQL waits here; SQLite relies on the check below
            .execution_options(populate_existing=True)
        ).first()
        done = session.get(CreditEventRecord, inp.idempotency_key, populate_existing=True)
        if done is not None:
            if row is not None and row.household_id == done.household_id:
                return _standing_of(row)
            return CreditStanding(score=done.score_after)  # the key was another household's

        before = CreditStanding(score=inp.initial_score) if row is None else _standing_of(row)
        after = apply_score_event(before, inp.event, inp.occurred_on, inp.policy)
        values = after.model_dump()
        if row is None:
            # A concurrent first event inserts the same primary key: IntegrityError, retry.
            session.add(
                CreditStandingRecord(household_id=inp.household_id, updated_at=now, **values)
            )
        else:
            # Compare-and-set on the standing read, so a concurrent event is never lost.
            moved = cast(
                "CursorResult[Any]",
                session.execute(
                    update(CreditStandingRecord)
                    .where(
                        col(CreditStandingRecord.household_id) == inp.household_id,
                        col(CreditStandingRecord.score) == before.score,
                        col(CreditStandingRecord.grade_floor_c_until) == before.grade_floor_c_until,
                        col(CreditStandingRecord.no_upgrade_until) == before.no_upgrade_until,
                        col(CreditStandingRecord.no_grading_until) == before.no_grading_until,
                    )
                    .values(updated_at=now, **values)
                ),
            )
            if moved.rowcount != 1:
                raise _StandingMoved(inp.household_id)
        session.add(
            CreditEventRecord(
                idempotency_key=inp.idempotency_key,
                household_id=inp.household_id,
                loan_id=inp.loan_id,
                event=inp.event.value,
                occurred_on=inp.occurred_on,
                score_before=before.score,
                score_after=after.score,
                recorded_at=now,
            )
        )
        session.flush()  # a concurrent retry of the same key fails here: IntegrityError, retry
        return after

    @activity.defn
    def blacklist_household(self, inp: BlacklistHouseholdInput) -> None:
        """Put a wilful defaulter's household on the blacklist (rule D-5): no new loans (E-6).

        Listing an already listed household changes nothing (the first listing stands).
        """

        def work(session: Session) -> None:
            if session.get(BlacklistEntry, inp.household_id) is None:
                session.add(
                    BlacklistEntry(
                        household_id=inp.household_id,
                        loan_id=inp.loan_id,
                        reason=mask_pii(inp.reason),  # the blacklist is a list (H-3)
                        listed_by=inp.listed_by,
                    )
                )
                session.flush()

        self._transaction(work)

    @activity.defn
    def household_credit(self, inp: HouseholdCreditInput) -> HouseholdCredit:
        """What the register holds on the household's credit: F-2 score and restrictions
        (for E-4) and the D-5 blacklist (for E-6)."""
        with self._sessions() as session:
            standing = session.get(CreditStandingRecord, inp.household_id)
            listed = session.get(BlacklistEntry, inp.household_id)
        credit = HouseholdCredit(
            blacklisted=listed is not None,
            blacklist_reason=None if listed is None else listed.reason,
        )
        if standing is not None:
            credit = credit.model_copy(update=_standing_of(standing).model_dump())
        return credit
