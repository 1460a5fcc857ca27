"""The decision route's inbox tasks (审查, 行长确认, 二级分行审查, 审批), shared by the loan's
origination and by an extension (X-4: the same route and authority as the original)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from activities.register import TaskSpec
from domain.approval import decision_actor
from domain.loan import Stage, Tier

# Task kind and key suffix of each step; the API's routes and the inbox know these kinds.
STEP_TASKS = {
    Stage.REVIEW: ("review", "review"),
    Stage.BRANCH_CONFIRMATION: ("confirm_as_branch_head", "confirm"),
    Stage.PREFECTURE_REVIEW: ("prefecture_review", "prefecture-review"),
    Stage.APPROVAL: ("approve", "approve"),
}


def decision_task(
    stage: Stage,
    key_prefix: str,
    tier: Tier,
    branch: str,
    prefecture: str,
    *,
    due: date | None,
    amount: Decimal,
    excluded: list[str],
) -> TaskSpec:
    """The task of one step of the route; an approver's must cover ``amount`` (A-2)."""
    kind, suffix = STEP_TASKS[stage]
    role, at_branch = decision_actor(stage, tier, branch, prefecture)
    return TaskSpec(
        task_key=f"{key_prefix}:{suffix}",
        kind=kind,
        role=role,
        branch_code=at_branch,
        due_date=due,
        min_approval_limit=amount if stage is Stage.APPROVAL else None,
        excluded_usernames=excluded,
    )
