"""Allocation of a payment to what is due (还款顺序), rule P-6."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from domain.loan import Money
from domain.money import has_at_most_cents, to_cents
from domain.policy import DEFAULT_ALLOCATION

ZERO = Decimal("0.00")

BUCKETS = DEFAULT_ALLOCATION  # the five P-6 buckets, in the rulebook's default order


class Dues(BaseModel):
    """What a payment may settle, by P-6 bucket.

    ``penalty_interest`` holds penalty interest (罚息) and compound interest (复利)
    together: P-6 names one bucket for both.
    """

    model_config = ConfigDict(extra="forbid")

    penalty_interest: Money = Field(ZERO, ge=0)
    overdue_interest: Money = Field(ZERO, ge=0)
    overdue_principal: Money = Field(ZERO, ge=0)
    current_interest: Money = Field(ZERO, ge=0)
    current_principal: Money = Field(ZERO, ge=0)

    @property
    def total(self) -> Decimal:
        return sum((getattr(self, bucket) for bucket in BUCKETS), ZERO)


class Allocation(BaseModel):
    """How one payment was applied; ``unapplied`` stays in the settlement account."""

    model_config = ConfigDict(extra="forbid")

    penalty_interest: Money = ZERO
    overdue_interest: Money = ZERO
    overdue_principal: Money = ZERO
    current_interest: Money = ZERO
    current_principal: Money = ZERO
    unapplied: Money = ZERO

    @property
    def applied(self) -> Decimal:
        return sum((getattr(self, bucket) for bucket in BUCKETS), ZERO)


def allocate(payment: Decimal, dues: Dues, order: Sequence[str]) -> Allocation:
    """Rule P-6: fill the buckets in the policy's order; what is left over is unapplied."""
    if payment <= 0 or not has_at_most_cents(payment):
        raise ValueError(f"payment must be positive with at most two decimals, got {payment}")
    if sorted(order) != sorted(BUCKETS):
        raise ValueError(f"order must name each of {', '.join(BUCKETS)} once, got {list(order)}")
    left = payment
    parts: dict[str, Decimal] = {}
    for bucket in order:
        share = min(left, getattr(dues, bucket))
        parts[bucket] = to_cents(share)
        left -= share
    return Allocation(**parts, unapplied=to_cents(left))
