"""The inbox: my tasks, claiming and releasing them. Steps are completed on the loan's endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import CurrentActor, SessionDep
from api.routes.loans import StepTaker
from api.schemas import TaskView
from api.services import tasks

router = APIRouter(prefix="/tasks", tags=["inbox"])

TaskId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_model=list[TaskView])
def my_tasks(
    actor: CurrentActor, session: SessionDep, overdue: bool = False, kind: str | None = None
) -> list[TaskView]:
    """Open tasks I may take: my role and branch, not excluded by A-1, within my limit (A-2)."""
    return tasks.my_tasks(session, actor, overdue_only=overdue, kind=kind)


@router.post("/{task_id}/claim", response_model=TaskView)
def claim_task(task_id: TaskId, actor: StepTaker, session: SessionDep) -> TaskView:
    return tasks.claim_task(session, actor, task_id)


@router.post("/{task_id}/release", response_model=TaskView)
def release_task(task_id: TaskId, actor: StepTaker, session: SessionDep) -> TaskView:
    return tasks.release_task(session, actor, task_id)
