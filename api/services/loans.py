"""Loans: take applications, pass human steps to the loan's workflow, read the register.

Routes stay thin; everything they do is here. Refusals from the workflow come back
as ``RuleViolation`` so ``api/errors.py`` gives them their status and rule ID.
"""

from __future__ import annotations

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
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from api.schemas import LoanDetail, LoanSummary, LoanWorkflowView
from api.services import figures, idempotency
from api.services.users import branch_prefecture
from domain.calendar import china_date
from domain.errors import Refusal, RuleViolation, ViolationKind, violation
from domain.ids import mask_pii_deep
from domain.loan import TERMINAL_STAGES, Actor, Role, Stage, Tier
from domain.money import from_fen
from domain.servicing import AccountAsOf
from store.models import (
    Branch,
    LoanRecord,
    Task,
)
from workflows.loan import LoanWorkflow
from workflows.messages import LoanStatus, workflow_id_for
from workflows.search_attributes import LOAN_BRANCH, LOAN_OFFICER, LOAN_STAGE, PENDING_ROLE
from workflows.step_keys import ALREADY_APPLIED

# The stages of post-loan management (LoanServicingWorkflow), which takes the post-loan steps.
SERVICING_STAGES = frozenset({Stage.REPAYING, Stage.WRITTEN_OFF, Stage.CLOSED})
# Who may see every branch's loans; everyone else sees their branch (or their prefecture's).
ALL_BRANCHES_ROLES = frozenset({Role.AUDITOR, Role.ADMIN})


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
    records = list(session.exec(query))
    accounts = figures.accounts_of(session, [r.loan_id for r in records])
    return [summary(r, accounts.get(r.loan_id)) for r in records]


def summary(record: LoanRecord, account: AccountAsOf | None) -> LoanSummary:
    """The register line; a serviced loan's figures as of today (the stored ones otherwise)."""
    line = _stored_summary(record)
    if account is None:
        return line
    today = figures.figures_today(account)
    return line.model_copy(
        update={
            "loan_class": today.loan_class.value,
            "bucket": today.bucket.value,
            "days_past_due": today.days_past_due,
            "arrears": today.arrears,
            "penalty_interest": today.penalty_interest,
            "compound_interest": today.compound_interest,
        }
    )


def _stored_summary(record: LoanRecord) -> LoanSummary:
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
    """The register line and the workflow's own state, both with today's figures."""
    record, status = await _find(session, client, actor, loan_id, ask_workflow=True)
    account = (await run_in_threadpool(figures.accounts_of, session, [loan_id])).get(loan_id)
    return LoanDetail(
        loan=summary(record, account) if record else None,
        workflow=masked(figures.status_today(status, account)) if status else None,
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
        await run_in_threadpool(session.close)  # not held while the workflow answers
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
    await run_in_threadpool(session.close)  # no database connection is held while Temporal works
    update_id = idempotency.step_update_id(
        update.__name__, step_input, actor, idempotency_key, china_date(datetime.now(UTC))
    )
    earlier = await _earlier_result(client, loan_id, update_id)
    if earlier is not None:
        return masked(earlier)
    stage = Stage(record.stage) if record is not None else status.stage if status else None
    try:
        _check_stage(loan_id, stage, servicing=servicing, allow_closed=allow_closed)
        await run_in_threadpool(_check_claim, session, actor, loan_id)
        await run_in_threadpool(session.close)
        result = await _send(client, loan_id, update, step_input, update_id)
    except (RuleViolation, ApiError) as refused:
        # A resend of a step applied in an earlier run, once the loan has moved on (its
        # stage, or a run that has no such step): the first answer, not the refusal.
        if isinstance(refused, ApiError) and refused.status != 409:
            raise
        if not await idempotency.applied_earlier(client, loan_id, update_id):
            raise
        result = await _first_answer(client, loan_id, update_id)
    return masked(result)


def _check_stage(loan_id: str, stage: Stage | None, *, servicing: bool, allow_closed: bool) -> None:
    """A loan that has ended takes no step; a closed one only its final evaluation."""
    assert stage is not None
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


async def _send(
    client: Client, loan_id: str, update: Any, step_input: Any, update_id: str
) -> LoanStatus:
    """The step to the loan's current run; its validator (and the step keys) decide."""
    try:
        result: LoanStatus = await _handle(client, loan_id).execute_update(
            update, step_input, id=update_id
        )
    except WorkflowUpdateFailedError as failed:
        if not _already_applied(failed):
            raise _as_violation(failed) from None
        return await _first_answer(client, loan_id, update_id)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise ApiError(409, f"loan {loan_id} is no longer accepting steps") from None
        raise
    return result


async def _first_answer(client: Client, loan_id: str, update_id: str) -> LoanStatus:
    """A step applied in an earlier run of the loan: the answer it was given then."""
    answer = await idempotency.first_answer(client, loan_id, update_id)
    if answer is None:
        raise ApiError(
            409,
            f"this step was applied to loan {loan_id} already; its first answer is no longer "
            "kept (Temporal's retention): read the loan's state with GET /loans/{loan_id}",
            rule="H-2",
        )
    return answer


def masked(status: LoanStatus) -> LoanStatus:
    """The workflow's state as staff may see it: numbers typed into free text masked (H-3)."""
    return LoanStatus.model_validate(mask_pii_deep(status.model_dump(mode="json")))


async def _earlier_result(
    client: Client, loan_id: str, update_id: str
) -> LoanStatus | None:
    """The result of a step already sent with this key, even if it ended the loan; a
    resend that the current run found applied in an earlier run reads it from there."""
    handle = _handle(client, loan_id)
    try:
        return await handle.get_update_handle(update_id, result_type=LoanStatus).result()
    except WorkflowUpdateFailedError as failed:
        if _already_applied(failed):
            return await _first_answer(client, loan_id, update_id)
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


# How the SDK refuses an update the loan's current workflow (origination or post-loan
# management) does not have.
NO_SUCH_STEP = "Update handler for"


def _already_applied(failed: WorkflowUpdateFailedError) -> bool:
    cause = failed.cause
    return isinstance(cause, ApplicationError) and cause.type == ALREADY_APPLIED


def _as_violation(failed: WorkflowUpdateFailedError) -> Exception:
    cause = failed.cause
    if isinstance(cause, ApplicationError) and cause.type == "RuleViolation" and cause.details:
        details: dict[str, Any] = dict(cause.details[0])
        return RuleViolation([Refusal.model_validate(r) for r in details["refusals"]])
    if isinstance(cause, ApplicationError) and cause.message.startswith(NO_SUCH_STEP):
        return violation(
            "H-2", "the loan has moved past the stage this step belongs to", ViolationKind.CONFLICT
        )
    if isinstance(cause, ApplicationError):
        return violation("H-2", cause.message, ViolationKind.CONFLICT)
    return failed
