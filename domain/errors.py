"""Rule violations: the one error type the domain raises.

The API turns ``kind`` into an HTTP status (see ``api/errors.py``); the
workflow turns a violation into a non-retryable ``ApplicationError`` that
carries the same fields, so a refusal reads the same wherever it happens.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class ViolationKind(StrEnum):
    INVALID = "invalid"  # the request itself breaks a rule -> 422
    CONFLICT = "conflict"  # the loan's state or another loan forbids it -> 409
    FORBIDDEN = "forbidden"  # this person may not do this -> 403
    NOT_FOUND = "not_found"  # -> 404


class Refusal(BaseModel):
    """One broken rule, with the field it concerns when there is one."""

    rule: str
    message: str
    field: str | None = None
    kind: ViolationKind = ViolationKind.INVALID


class RuleViolation(Exception):
    """Raised when a step breaks one or more rules; nothing has changed."""

    def __init__(self, refusals: list[Refusal] | Refusal) -> None:
        self.refusals = refusals if isinstance(refusals, list) else [refusals]
        if not self.refusals:
            raise ValueError("a RuleViolation needs at least one refusal")
        super().__init__("; ".join(f"{r.rule}: {r.message}" for r in self.refusals))

    @property
    def kind(self) -> ViolationKind:
        # The most serious kind wins: a forbidden actor is told so first.
        order = [ViolationKind.FORBIDDEN, ViolationKind.NOT_FOUND, ViolationKind.CONFLICT]
        for kind in order:
            if any(r.kind is kind for r in self.refusals):
                return kind
        return ViolationKind.INVALID

    @property
    def rule(self) -> str:
        return self.refusals[0].rule


def violation(
    rule: str, message: str, kind: ViolationKind = ViolationKind.CONFLICT, field: str | None = None
) -> RuleViolation:
    return RuleViolation(Refusal(rule=rule, message=message, kind=kind, field=field))
