"""Prepayment (提前还款), partial or full, rule P-4.

A quote, not a posting: what the borrower pays, how it splits, and the schedule that
follows. A partial prepayment keeps the contract's remaining due dates and maturity and
lowers the installments; the new schedule is recomputed by the rules (P-1, C-4), never
edited by hand.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from pydantic import BaseModel, ConfigDict

from domain.accrual import interest_between
from domain.loan import Installment, Money, RepaymentMethod
from domain.money import CENT, has_at_most_cents, to_cents
from domain.policy import Policy
from domain.schedule import build_schedule_on_dates


class PrepaymentQuote(BaseModel):
    """What a prepayment costs and what follows it."""

    model_config = ConfigDict(extra="forbid")

    full: bool
    interest_to_date: Money  # P-1 on the outstanding principal since the period began
    fee: Money  # P-4: policy rate × principal prepaid
    principal_prepaid: Money
    total_due: Money  # interest + fee + principal; a partial quote may leave a cent over
    new_schedule: list[Installment]  # the unsettled installments; empty when full
    needs_consent: bool  # P-4: with the cooperative's consent


def prepay(
    schedule: list[Installment],
    paid_through: int,
    as_of: date,
    outstanding: Decimal,
    amount: Decimal,
    annual_rate: Decimal,
    method: RepaymentMethod,
    policy: Policy,
) -> PrepaymentQuote:
    """Rule P-4: quote a prepayment of ``amount`` on ``as_of``.

    ``schedule`` is the loan's current schedule in order (settled lines first) and
    ``paid_through`` the number of its installments already settled. Interest runs from
    the start of the current period (the last settled due date; the disbursement date
    before the first; the date of an earlier partial prepayment after one) to ``as_of``.
    A prepayment is quoted inside the current period only: an installment that has fallen
    due is settled first (P-2, P-6).
    """
    if not 0 <= paid_through < len(schedule):
        raise ValueError(
            f"paid_through must be 0 to {len(schedule) - 1} for a schedule of "
            f"{len(schedule)} installments with something left to pay, got {paid_through}"
        )
    if outstanding <= 0 or not has_at_most_cents(outstanding):
        raise ValueError(f"outstanding must be a positive amount in cents, got {outstanding}")
    if amount <= 0 or not has_at_most_cents(amount):
        raise ValueError(f"amount must be positive with at most two decimals, got {amount}")
    following = schedule[paid_through]
    # The line after the settled ones starts where its period starts; its days say where.
    period_start = following.due_date - timedelta(days=following.days)
    if as_of < period_start:
        raise ValueError(f"prepayment date {as_of} is before the period start {period_start}")
    if as_of >= following.due_date:
        raise ValueError(
            f"installment {following.number} falls due on {following.due_date}; "
            f"it is settled before a prepayment on {as_of}"
        )

    basis = policy.interest.day_count_basis
    fee_rate = policy.repayment.prepayment_fee_rate
    interest = interest_between(outstanding, annual_rate, period_start, as_of, basis)
    full_fee = to_cents(outstanding * fee_rate)
    full_total = outstanding + interest + full_fee
    needs_consent = policy.repayment.prepayment_needs_consent
    if amount >= full_total:
        return PrepaymentQuote(
            full=True,
            interest_to_date=interest,
            fee=full_fee,
            principal_prepaid=outstanding,
            total_due=to_cents(full_total),
            new_schedule=[],
            needs_consent=needs_consent,
        )

    principal = _largest_principal(amount - interest, fee_rate)
    if principal <= 0:
        raise ValueError(
            f"amount {amount} does not cover the interest to date {interest} "
            "and the fee on any principal"
        )
    fee = to_cents(principal * fee_rate)
    remaining = outstanding - principal
    due_dates = [line.due_date for line in schedule[paid_through:]]
    lines = build_schedule_on_dates(remaining, annual_rate, method, as_of, due_dates, basis)
    renumbered = [line.model_copy(update={"number": paid_through + line.number}) for line in lines]
    return PrepaymentQuote(
        full=False,
        interest_to_date=interest,
        fee=fee,
        principal_prepaid=principal,
        total_due=to_cents(interest + fee + principal),
        new_schedule=renumbered,
        needs_consent=needs_consent,
    )


def _largest_principal(available: Decimal, fee_rate: Decimal) -> Decimal:
    """The most principal, in cents, that ``available`` pays together with its fee."""
    if available <= 0:
        return Decimal("0.00")
    principal = (available / (1 + fee_rate)).quantize(CENT, rounding=ROUND_DOWN)
    # The fee rounds half up, so the estimate can be a cent off either way.
    while principal > 0 and principal + to_cents(principal * fee_rate) > available:
        principal -= CENT
    while principal + CENT + to_cents((principal + CENT) * fee_rate) <= available:
        principal += CENT
    return principal
