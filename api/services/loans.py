"""Loans: take applications, pass human steps to the loan's workflow, read the register.

Routes stay thin; everything they do is here. Refusals from the workflow come back
as ``RuleViolation`` so ``api/errors.py`` gives them their status and rule ID.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from api.schemas import LoanCreated, LoanDetail, LoanSummary, LoanWorkflowView
from api.services.users import branch_prefecture
from domain.approval import approval_tier
from domain.calendar import china_date
from domain.eligibility import check_application, check_register_credit
from domain.errors import Refusal, RuleViolation, ViolationKind, violation
from domain.ids import mask_pii_deep
from domain.loan import TERMINAL_STAGES, Actor, LoanApplication, Role, Stage, Tier
from domain.money import from_fen
from domain.policy import Policy
from store.models import (
    BlacklistEntry,
    Branch,
    CreditStandingRecord,
    HouseholdClaim,
    LoanRecord,
    Task,
)
from workflows.loan import LoanWorkflow
from workflows.messages import ApplyForLoan, LoanStatus, workflow_id_for
from workflows.search_attributes import LOAN_BRANCH, LOAN_OFFICER, LOAN_STAGE, PENDING_ROLE

# The stages of post-loan management (LoanServicingWorkflow), which takes the post-loan steps.
SERVICING_STAGES = frozenset({Stage.REPAYING, Stage.WRITTEN_OFF, Stage.CLOSED})
# Who may see every branch's loans; everyone else sees their branch (or their prefecture's).
ALL_BRANCHES_ROLES = frozenset({Role.AUDITOR, Role.ADMIN})


def new_loan_id(now: datetime) -> str:
    return f"LN{china_date(now):%Y%m%d}{secrets.token_hex(4).upper()}"


async def apply_for_loan(
    session: Session,
    client: Client,
    policy: Policy,
    task_queue: str,
    officer: Actor,
    app: LoanApplication,
) -> LoanCreated:
    """Checks what can be checked at the edge, then starts the loan's workflow."""
    now = datetime.now(UTC)
    prefecture = await run_in_threadpool(_admit, session, policy, officer, app, now)
    loan_id = new_loan_id(now)
    await client.start_workflow(
        LoanWorkflow.run,
        ApplyForLoan(
            loan_id=loan_id,
            application=app,
            branch_code=officer.branch,
            prefecture_code=prefecture,
            officer=officer,
            applied_at=now,
            policy=policy,
        ),
        id=workflow_id_for(loan_id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(LOAN_STAGE, Stage.APPLIED.value),
                SearchAttributePair(LOAN_BRANCH, officer.branch),
                SearchAttributePair(LOAN_OFFICER, officer.username),
                SearchAttributePair(PENDING_ROLE, ""),
            ]
        ),
    )
    return LoanCreated(
        loan_id=loan_id,
        workflow_id=workflow_id_for(loan_id),
        policy_version=policy.version,
        stage=Stage.APPLIED,
    )


def _admit(
    session: Session, policy: Policy, officer: Actor, app: LoanApplication, now: datetime
) -> str | None:
    """The edge's checks (nothing is started or written if one fails); the prefecture branch."""
    refusals = check_application(app, policy, china_date(now))
    if refusals:
        raise RuleViolation(refusals)
    claim = session.get(HouseholdClaim, app.applicant.household_id)
    if claim is not None:  # the workflow re-checks atomically (E-7); this answers at once
        raise violation(
            "E-7",
            f"household {app.applicant.household_id} already has an open application or loan "
            f"({claim.loan_id}); one member per household at a time",
            field="applicant.household_id",
        )
    household = app.applicant.household_id
    standing = session.get(CreditStandingRecord, household)
    refusals = check_register_credit(
        standing.score if standing else None,
        session.get(BlacklistEntry, household) is not None,
        policy,
    )
    if refusals:  # the workflow re-checks at intake; this answers at once
        raise RuleViolation(refusals)
    prefecture = branch_prefecture(session, officer.branch)
    if prefecture is None and approval_tier(app.amount, policy) is Tier.PREFECTURE:
        raise violation(
            "A-2",
            f"branch {officer.branch} reports to no prefecture branch, so a loan above the "
            f"county limit {policy.approval.county_authority_limit} cannot be routed",
            field="amount",
        )
    return prefecture


def visible_branches(session: Session, actor: Actor) -> set[str] | None:
    """The branches whose loans the actor may see; None means all of them."""
    if actor.role in ALL_BRANCHES_ROLES:
        return None
    if actor.tier is Tier.PREFECTURE or branch_prefecture(session, actor.branch) == actor.branch:
        children = session.exec(select(Branch.code).where(Branch.parent_code == actor.branch))
        return {actor.branch, *children}
    return {actor.branch}


async def search_workflows(
    session: Session,
    client: Client,
    actor: Actor,
    *,
    stage: str | None = None,
    branch: str | None = None,
    pending_role: str | None = None,
    officer: str | None = None,
    limit: int = 100,
) -> list[LoanWorkflowView]:
    """Loans as Temporal's visibility finds them by search attributes (the Temporal UI's view).

    Filter values are validated as plain codes by the route, so they cannot alter the query.
    """
    clauses = ["WorkflowType = 'LoanWorkflow'"]
    branches = await run_in_threadpool(visible_branches, session, actor)
    if branch is not None:
        if branches is not None and branch not in branches:
            raise ApiError(403, f"branch {branch} is not yours to search", field="branch")
        clauses.append(f"LoanBranch = '{branch}'")
    elif branches is not None:
        clauses.append("LoanBranch IN (" + ", ".join(f"'{b}'" for b in sorted(branches)) + ")")
    for key, value in ((LOAN_STAGE, stage), (PENDING_ROLE, pending_role), (LOAN_OFFICER, officer)):
        if value is not None:
            clauses.append(f"{key.name} = '{value}'")
    found: list[LoanWorkflowView] = []
    async for wf in client.list_workflows(" AND ".join(clauses), limit=limit):
        attrs = wf.typed_search_attributes
        found.append(
            LoanWorkflowView(
                loan_id=wf.id.removeprefix("loan-"),
                workflow_id=wf.id,
                status=wf.status.name if wf.status else "UNKNOWN",
                stage=attrs.get(LOAN_STAGE),
                branch=attrs.get(LOAN_BRANCH),
                pending_role=attrs.get(PENDING_ROLE) or None,
                officer=attrs.get(LOAN_OFFICER),
                started_at=wf.start_time,
            )
        )
    return found


def get_loan_record(session: Session, actor: Actor, loan_id: str) -> LoanRecord:
    """The register row, 404 when unknown, 403 when it belongs to a branch the actor can't see."""
    record = session.get(LoanRecord, loan_id)
    if record is None:
        raise ApiError(404, f"no loan {loan_id}", field="loan_id")
    _check_visible(session, actor, loan_id, record.branch_code)
    return record


def _check_visible(session: Session, actor: Actor, loan_id: str, branch_code: str) -> None:
    branches = visible_branches(session, actor)
    if branches is not None and branch_code not in branches:
        raise ApiError(403, f"loan {loan_id} belongs to branch {branch_code}")


def list_loans(
    session: Session,
    actor: Actor,
    *,
    stage: str | None = None,
    branch: str | None = None,
    officer: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[LoanSummary]:
    query = select(LoanRecord)
    branches = visible_branches(session, actor)
    if branches is not None:
        query = query.where(col(LoanRecord.branch_code).in_(branches))
    if stage:
        query = query.where(LoanRecord.stage == stage)
    if branch:
        query = query.where(LoanRecord.branch_code == branch)
    if officer:
        query = query.where(LoanRecord.officer_username == officer)
    query = query.order_by(col(LoanRecord.applied_at).desc()).offset(offset).limit(limit)
    return [summary(r) for r in session.exec(query)]


def summary(record: LoanRecord) -> LoanSummary:
    return LoanSummary(
        loan_id=record.loan_id,
        stage=record.stage,
        branch_code=record.branch_code,
        officer=record.officer_username,
        applicant_name=record.applicant_name,
        id_number=record.id_number_masked,
        phone=record.phone_masked,
        village=record.village,
        purpose=record.purpose,
        guarantee_type=record.guarantee_type,
        repayment_method=record.repayment_method,
        amount_requested=from_fen(record.amount_requested_fen),
        amount_approved=from_fen(record.amount_approved_fen)
        if record.amount_approved_fen is not None
        else None,
        term_months=record.term_months,
        annual_rate=record.annual_rate,
        policy_version=record.policy_version,
        applied_at=record.applied_at,
        decision_due=record.decision_due,
        sla_breached=record.sla_breached,
        decided_at=record.decided_at,
        disbursed_at=record.disbursed_at,
        maturity_date=record.maturity_date,
        outcome_reasons=mask_pii_deep(record.outcome_reasons),
        loan_class=record.loan_class,
        bucket=record.bucket,
        days_past_due=record.days_past_due,
        principal_outstanding=_money(record.principal_outstanding_fen),
        arrears=_money(record.arrears_fen),
        next_due_date=record.next_due_date,
        closed_at=record.closed_at,
    )


def _money(fen: int | None) -> Decimal | None:
    return from_fen(fen) if fen is not None else None


async def loan_detail(session: Session, client: Client, actor: Actor, loan_id: str) -> LoanDetail:
    """The register line and the workflow's own state."""
    record, status = await _find(session, client, actor, loan_id, ask_workflow=True)
    return LoanDetail(
        loan=summary(record) if record else None, workflow=masked(status) if status else None
    )


async def _find(
    session: Session, client: Client, actor: Actor, loan_id: str, *, ask_workflow: bool
) -> tuple[LoanRecord | None, LoanStatus | None]:
    """The loan's register line and, when asked or when there is no line yet, its workflow's
    state: right after the application, while intake runs, only the workflow knows the loan;
    after Temporal's retention has removed an ended loan's history, only the register does.
    404 when neither knows it, 403 when it belongs to a branch the actor may not see."""
    record = await run_in_threadpool(session.get, LoanRecord, loan_id)
    status: LoanStatus | None = None
    if ask_workflow or record is None:
        try:
            status = await _handle(client, loan_id).query(LoanWorkflow.status)
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
            if record is None:
                raise ApiError(404, f"no loan {loan_id}", field="loan_id") from None
    if status is not None:
        branch = status.branch_code
    else:
        assert record is not None
        branch = record.branch_code
    await run_in_threadpool(_check_visible, session, actor, loan_id, branch)
    return record, status


def _handle(client: Client, loan_id: str) -> WorkflowHandle[LoanWorkflow, Any]:
    return client.get_workflow_handle_for(LoanWorkflow.run, workflow_id_for(loan_id))


async def perform_step(
    session: Session,
    client: Client,
    actor: Actor,
    loan_id: str,
    update: Any,
    step_input: Any,
    idempotency_key: str | None = None,
    *,
    servicing: bool = False,
    allow_closed: bool = False,
) -> LoanStatus:
    """Sends one human step to the loan's workflow; its validator decides, nothing else.

    A loan that has ended takes no step; a closed (repaid) one only its final evaluation
    (P-7), which passes ``allow_closed``. A post-loan step (``servicing``) waits until the
    loan is paid out and its workflow has become post-loan management.
    """
    record, status = await _find(session, client, actor, loan_id, ask_workflow=False)
    handle = _handle(client, loan_id)
    update_id = _update_id(actor, update, idempotency_key)
    if update_id is not None:
        earlier = await _earlier_result(handle, update_id)
        if earlier is not None:
            return masked(earlier)
    if record is not None:
        stage = Stage(record.stage)
    else:
        assert status is not None
        stage = status.stage
    if stage in TERMINAL_STAGES:
        rule = "C-1" if stage is Stage.LAPSED else "A-3"
        raise violation(rule, f"loan {loan_id} has ended in stage '{stage.value}'")
    if stage is Stage.CLOSED and not allow_closed:
        raise violation("P-7", f"loan {loan_id} is repaid and closed; it takes no more steps")
    if servicing and stage not in SERVICING_STAGES:
        raise ApiError(
            409,
            f"loan {loan_id} is in stage '{stage.value}'; post-loan steps begin once it is "
            f"paid out and repaying",
        )
    await run_in_threadpool(_check_claim, session, actor, loan_id)
    try:
        result: LoanStatus = await handle.execute_update(update, step_input, id=update_id)
    except WorkflowUpdateFailedError as failed:
        raise _as_violation(failed) from None
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise ApiError(409, f"loan {loan_id} is no longer accepting steps") from None
        raise
    return masked(result)


def masked(status: LoanStatus) -> LoanStatus:
    """The workflow's state as staff may see it: numbers typed into free text masked (H-3)."""
    return LoanStatus.model_validate(mask_pii_deep(status.model_dump(mode="json")))


def _update_id(actor: Actor, update: Any, idempotency_key: str | None) -> str | None:
    """A client's Idempotency-Key makes a resubmitted step return the first result (one effect).

    The step is part of the id, so a key reused for another step never stands in for it.
    """
    if not idempotency_key:
        return None
    return f"{actor.username}:{update.__name__}:{idempotency_key}"


async def _earlier_result(
    handle: WorkflowHandle[LoanWorkflow, Any], update_id: str
) -> LoanStatus | None:
    """The result of a step already sent with this key, even if it ended the loan."""
    try:
        return await handle.get_update_handle(update_id, result_type=LoanStatus).result()
    except WorkflowUpdateFailedError as failed:
        raise _as_violation(failed) from None
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return None
        raise


def _check_claim(session: Session, actor: Actor, loan_id: str) -> None:
    """A task someone has claimed is theirs to complete (the inbox's promise)."""
    mine = session.exec(
        select(Task).where(Task.loan_id == loan_id, Task.status == "open", Task.role == actor.role)
    ).all()
    if mine and all(t.claimed_by not in (None, actor.username) for t in mine):
        raise ApiError(409, f"the task for this step is claimed by {mine[0].claimed_by}")


def investigation_task_key(session: Session, actor: Actor, loan_id: str) -> str | None:
    """The investigation task the officer claimed, so their report closes that very task."""
    task = session.exec(
        select(Task).where(
            Task.loan_id == loan_id,
            Task.status == "open",
            Task.kind == "investigate",
            Task.claimed_by == actor.username,
        )
    ).first()
    return task.task_key if task else None


def _as_violation(failed: WorkflowUpdateFailedError) -> Exception:
    cause = failed.cause
    if isinstance(cause, ApplicationError) and cause.type == "RuleViolation" and cause.details:
        details: dict[str, Any] = dict(cause.details[0])
        return RuleViolation([Refusal.model_validate(r) for r in details["refusals"]])
    if isinstance(cause, ApplicationError):
        return violation("H-2", cause.message, ViolationKind.CONFLICT)
    return failed
