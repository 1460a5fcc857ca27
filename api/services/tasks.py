"""The inbox (待办): the open human steps a member of staff may take, and claiming them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import CursorResult, or_, update
from sqlmodel import Session, col, select

from api.errors import ApiError
from api.schemas import TaskView
from domain.calendar import china_date
from domain.loan import Actor
from domain.money import from_fen, to_fen
from store.models import LoanRecord, Task

STEP_ENDPOINTS = {
    "supply_materials": "materials",
    "investigate": "investigations",
    "review": "review",
    "prefecture_review": "review",
    "confirm_as_branch_head": "branch-confirmation",
    "approve": "decision",
    "sign_contract": "contract",
    "inspection": "inspections",
    "village_inspection": "inspections",
    "collect": "collection-actions",
    "notice_follow_up": "collection-actions",
    "warning": "warning-decisions",
    "warning_escalated": "warning-decisions",
    "consent_prepayment": "prepayment-decision",
    "approve_write_off": "write-off-decision",
    "final_evaluation": "final-evaluation",
}


def _may_take(task: Task, actor: Actor) -> bool:
    if task.role != actor.role or task.branch_code != actor.branch:
        return False
    if actor.username in task.excluded_usernames:
        return False
    if task.min_approval_limit_fen is not None:
        limit = to_fen(actor.approval_limit) if actor.approval_limit is not None else 0
        if limit < task.min_approval_limit_fen:
            return False
    return task.claimed_by in (None, actor.username)


def _view(task: Task, loan: LoanRecord, today: date) -> TaskView:
    assert task.id is not None
    return TaskView(
        id=task.id,
        task_key=task.task_key,
        loan_id=task.loan_id,
        kind=task.kind,
        role=task.role,
        branch_code=task.branch_code,
        claimed_by=task.claimed_by,
        status=task.status,
        due_date=task.due_date,
        overdue=task.due_date is not None and task.due_date < today,
        created_at=task.created_at,
        applicant_name=loan.applicant_name,
        amount_requested=from_fen(loan.amount_requested_fen),
        stage=loan.stage,
        step_endpoint=f"/loans/{task.loan_id}/{STEP_ENDPOINTS.get(task.kind, '')}",
    )


def my_tasks(
    session: Session, actor: Actor, *, overdue_only: bool = False, kind: str | None = None
) -> list[TaskView]:
    """Open tasks this person may take now: their role and branch, not excluded (A-1), in limit."""
    today = china_date(datetime.now(UTC))
    query = (
        select(Task, LoanRecord)
        .join(LoanRecord, col(LoanRecord.loan_id) == col(Task.loan_id))
        .where(Task.status == "open", Task.role == actor.role, Task.branch_code == actor.branch)
        .order_by(col(Task.due_date), col(Task.id))
    )
    if kind:
        query = query.where(Task.kind == kind)
    views = [_view(t, loan, today) for t, loan in session.exec(query) if _may_take(t, actor)]
    return [v for v in views if v.overdue] if overdue_only else views


def claim_task(session: Session, actor: Actor, task_id: int) -> TaskView:
    task = _open_task(session, task_id)
    if task.claimed_by not in (None, actor.username):
        raise ApiError(409, f"task {task_id} is already claimed by {task.claimed_by}")
    if not _may_take(task, actor):
        raise ApiError(403, f"task {task_id} is for a {task.role} of branch {task.branch_code}")
    # Compare-and-set, so of two people claiming at once exactly one gets the task.
    claimed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Task)
        .where(
            col(Task.id) == task_id,
            col(Task.status) == "open",
            or_(col(Task.claimed_by).is_(None), col(Task.claimed_by) == actor.username),
        )
        .values(claimed_by=actor.username)
    )
    session.commit()
    if claimed.rowcount != 1:
        raise ApiError(409, f"task {task_id} was claimed or closed just now")
    session.refresh(task)
    return _view(task, _loan(session, task), china_date(datetime.now(UTC)))


def release_task(session: Session, actor: Actor, task_id: int) -> TaskView:
    task = _open_task(session, task_id)
    if task.claimed_by != actor.username:
        raise ApiError(409, f"task {task_id} is not claimed by you")
    task.claimed_by = None
    session.add(task)
    session.commit()
    return _view(task, _loan(session, task), china_date(datetime.now(UTC)))


def _open_task(session: Session, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise ApiError(404, f"no task {task_id}", field="task_id")
    if task.status != "open":
        raise ApiError(409, f"task {task_id} is {task.status}")
    return task


def _loan(session: Session, task: Task) -> LoanRecord:
    loan = session.get(LoanRecord, task.loan_id)
    assert loan is not None
    return loan
