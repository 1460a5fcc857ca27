"""The repayment schedule (还款计划), rules P-1, E-14 and C-4.

Interest accrues on outstanding principal by actual days at annual rate / basis
(P-1). Every figure is a Decimal rounded half up to the cent; the principals
add up to the loan exactly and every line's payment is principal + interest.
"""

from __future__ import annotations

import calendar
from datetime import date
from decimal import Decimal

from domain.loan import Installment, RepaymentMethod
from domain.money import to_cents

ZERO = Decimal("0.00")


def add_months(start: date, months: int) -> date:
    """Same day of the month ``months`` later, clamped to the month's end.

    Always anchored on ``start``: 01-31 + 1 -> 02-28 (or 29), + 2 -> 03-31.
    """
    year, month0 = divmod(start.month - 1 + months, 12)
    year += start.year
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(start.day, last_day))


def maturity_date(start: date, term_months: int) -> date:
    """The final due date (到期日)."""
    return add_months(start, term_months)


def period_interest(principal: Decimal, annual_rate: Decimal, days: int, basis: int) -> Decimal:
    """Interest for ``days`` on ``principal`` (rule P-1: daily rate = annual / basis)."""
    return to_cents(principal * annual_rate * days / basis)


def build_schedule(
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    method: RepaymentMethod,
    start: date,
    basis: int = 360,
) -> list[Installment]:
    """The schedule fixed at disbursement (rule C-4) for one of the E-14 methods."""
    if term_months < 1:
        raise ValueError(f"term must be at least 1 month, got {term_months}")
    return build_schedule_on_dates(
        principal, annual_rate, method, start, _due_dates(start, term_months, method), basis
    )


def build_schedule_on_dates(
    principal: Decimal,
    annual_rate: Decimal,
    method: RepaymentMethod,
    start: date,
    due_dates: list[date],
    basis: int = 360,
) -> list[Installment]:
    """A schedule from ``start`` over the given due dates, numbered from 1 (P-1, C-4).

    For schedules recomputed by the rules rather than fixed at disbursement: a partial
    prepayment (P-4) keeps the contract's remaining due dates, an extension (X-6) has its own.
    """
    if principal <= 0 or principal != to_cents(principal):
        raise ValueError(f"principal must be a positive amount in cents, got {principal}")
    if annual_rate < 0:
        raise ValueError(f"annual rate must not be negative, got {annual_rate}")
    if basis < 1:
        raise ValueError(f"day-count basis must be positive, got {basis}")
    if not due_dates:
        raise ValueError("a schedule needs at least one due date")
    if any(due <= prev for prev, due in zip([start, *due_dates], due_dates, strict=False)):
        raise ValueError(f"due dates must be increasing and after the start {start}")

    periods = len(due_dates)
    day_counts = [
        (due - prev).days for prev, due in zip([start, *due_dates], due_dates, strict=False)
    ]
    level = level_payment(principal, annual_rate, day_counts, basis)  # 等额本息
    share = to_cents(principal / periods)  # 等额本金

    lines: list[Installment] = []
    outstanding = principal
    previous = start
    for number, due in enumerate(due_dates, start=1):
        days = (due - previous).days
        interest = period_interest(outstanding, annual_rate, days, basis)
        if number == periods:
            paid = outstanding  # the last line absorbs every rounding difference
        elif method is RepaymentMethod.EQUAL_INSTALLMENT:
            paid = min(max(level - interest, ZERO), outstanding)
        elif method is RepaymentMethod.EQUAL_PRINCIPAL:
            paid = min(share, outstanding)
        else:
            paid = ZERO  # interest only until maturity
        outstanding -= paid
        lines.append(
            Installment(
                number=number,
                due_date=due,
                principal=to_cents(paid),
                interest=interest,
                payment=to_cents(paid + interest),
                remaining_principal=to_cents(outstanding),
                days=days,
            )
        )
        previous = due
    return lines


def schedule_totals(installments: list[Installment]) -> tuple[Decimal, Decimal, Decimal]:
    """Total principal, interest and payment of a schedule."""
    principal = sum((i.principal for i in installments), ZERO)
    interest = sum((i.interest for i in installments), ZERO)
    payment = sum((i.payment for i in installments), ZERO)
    return principal, interest, payment


def _due_dates(start: date, term_months: int, method: RepaymentMethod) -> list[date]:
    if method is RepaymentMethod.LUMP_SUM:
        months = [term_months]
    elif method is RepaymentMethod.INTEREST_QUARTERLY:
        # Every quarter from the start; the last period runs to maturity and may be shorter.
        months = [*range(3, term_months, 3), term_months]
    else:
        months = list(range(1, term_months + 1))
    return [add_months(start, m) for m in months]


def level_payment(
    principal: Decimal, annual_rate: Decimal, day_counts: list[int], basis: int
) -> Decimal:
    """等额本息: the level payment under P-1's actual-day interest, to the cent.

    The textbook A = P·r·(1+r)^n / ((1+r)^n − 1) with r = annual/12 assumes 30-day months;
    with interest by actual days / 360 it leaves the last payment yuan apart from the others.
    So the payment is solved on the schedule itself: the least whole-cent payment after which
    the last one is no larger, which leaves the last payment within cents of the rest.
    """
    cents = Decimal("0.01")
    low, high = (
        Decimal(0),
        to_cents(principal + period_interest(principal, annual_rate, sum(day_counts), basis)),
    )
    while high - low > cents:
        middle = to_cents((low + high) / 2)
        if _last_payment(principal, annual_rate, day_counts, basis, middle) <= middle:
            high = middle
        else:
            low = middle
    return high


def _last_payment(
    principal: Decimal, annual_rate: Decimal, day_counts: list[int], basis: int, level: Decimal
) -> Decimal:
    outstanding = principal
    for days in day_counts[:-1]:
        interest = period_interest(outstanding, annual_rate, days, basis)
        outstanding -= min(max(level - interest, ZERO), outstanding)
    return outstanding + period_interest(outstanding, annual_rate, day_counts[-1], basis)
