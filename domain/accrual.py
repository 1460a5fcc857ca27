"""Interest by actual days (P-1) and penalty and compound interest on arrears (P-5).

罚息 (penalty interest) runs on overdue principal and 复利 (compound interest) on unpaid
interest, from the day after a missed due date, at the contract rate times the policy's
multipliers. The workflow calls ``accrue`` once per period between events (a due date, a
payment, a month end), never once per day: each increment is rounded to the cent once for
the whole period, so the figures match a hand computation over the same days.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from domain.loan import Money
from domain.money import to_cents
from domain.policy import Policy
from domain.schedule import period_interest

ZERO = Decimal("0.00")


class Arrears(BaseModel):
    """What is overdue (逾期本金, 欠息) and the penalty and compound interest unpaid so far."""

    model_config = ConfigDict(extra="forbid")

    overdue_principal: Money = Field(ZERO, ge=0)
    overdue_interest: Money = Field(ZERO, ge=0)  # contract interest not paid on its due date
    penalty_interest: Money = Field(ZERO, ge=0)  # 罚息
    compound_interest: Money = Field(ZERO, ge=0)  # 复利

    @property
    def total(self) -> Decimal:
        return (
            self.overdue_principal
            + self.overdue_interest
            + self.penalty_interest
            + self.compound_interest
        )


def accrue(arrears: Arrears, annual_rate: Decimal, days: int, policy: Policy) -> Arrears:
    """Rule P-5 over ``days`` days during which the arrears did not change.

    Penalty interest on overdue principal and compound interest on overdue (contract)
    interest, both at contract rate × multiplier × days / basis, rounded half up once for
    the period. Penalty and compound interest do not themselves compound.
    """
    if days < 0:
        raise ValueError(f"days must not be negative, got {days}")
    if annual_rate < 0:
        raise ValueError(f"annual rate must not be negative, got {annual_rate}")
    basis = policy.interest.day_count_basis
    rules = policy.repayment
    penalty = to_cents(
        arrears.overdue_principal * annual_rate * rules.penalty_rate_multiplier * days / basis
    )
    compound = to_cents(
        arrears.overdue_interest * annual_rate * rules.compound_rate_multiplier * days / basis
    )
    return arrears.model_copy(
        update={
            "penalty_interest": arrears.penalty_interest + penalty,
            "compound_interest": arrears.compound_interest + compound,
        }
    )


def interest_between(
    principal: Decimal, annual_rate: Decimal, start: date, end: date, basis: int
) -> Decimal:
    """Rule P-1: contract interest on ``principal`` for the actual days from start to end."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return period_interest(principal, annual_rate, (end - start).days, basis)
