"""Refusing a human step: the error an update's validator raises, which the API reads."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from domain.errors import Refusal, RuleViolation, ViolationKind
from domain.loan import Actor, Role
from workflows.messages import HandOver


def refuse(refusals: list[Refusal]) -> ApplicationError:
    """A refusal the API can read: the rule, the kind (-> HTTP status) and every reason."""
    first = refusals[0]
    return ApplicationError(
        "; ".join(f"{r.rule}: {r.message}" for r in refusals),
        {
            "rule": first.rule,
            "kind": RuleViolation(refusals).kind.value,
            "refusals": [r.model_dump(mode="json") for r in refusals],
        },
        type="RuleViolation",
        non_retryable=True,
    )


def refusal(rule: str, message: str, kind: ViolationKind, field: str | None = None) -> Refusal:
    return Refusal(rule=rule, message=message, kind=kind, field=field)


def check_actor(rule: str, step: str, actor: Actor, role: Role, branch: str) -> None:
    """The step belongs to one role of one branch; anyone else is refused (403)."""
    if actor.role is not role or actor.branch != branch:
        raise refuse(
            [
                refusal(
                    rule,
                    f"{step} is for a {role.value} of branch {branch}; "
                    f"{actor.username} is a {actor.role.value} of branch {actor.branch}",
                    ViolationKind.FORBIDDEN,
                )
            ]
        )


def check_handover(inp: HandOver, current_officer: str, branch: str) -> None:
    """H-1: the successor is a loan officer of the loan's branch, not the leaving one, and
    both officers have signed."""
    successor = inp.successor
    reasons: list[Refusal] = []
    if successor.role is not Role.LOAN_OFFICER or successor.branch != branch:
        reasons.append(
            refusal(
                "H-1",
                f"the successor must be a loan officer of branch {branch}; {successor.username} "
                f"is a {successor.role.value} of branch {successor.branch}",
                ViolationKind.INVALID,
                "successor",
            )
        )
    if successor.username == current_officer:
        reasons.append(
            refusal(
                "H-1",
                f"{successor.username} already holds the loan",
                ViolationKind.INVALID,
                "successor",
            )
        )
    if not (inp.leaving_officer_signed and inp.successor_signed):
        reasons.append(
            refusal(
                "H-1",
                "the handover is signed by the leaving officer and the successor",
                ViolationKind.INVALID,
                "signatures",
            )
        )
    if reasons:
        raise refuse(reasons)
