"""The loan's account in post-loan management (贷款分户账): what is due, paid and overdue.

Pure transitions over a ``LoanBook``: bill an installment on its due date (P-2), accrue
penalty and compound interest on arrears (P-5), apply a payment by P-6 and tell whether
the loan is settled (P-7). The workflow holds the book and carries it across runs; the
ledger holds the money. Overdue amounts are kept per installment, oldest first, so days
past due always count from the oldest installment not fully paid (F-1, D-1, D-4).
Between the workflow's events, ``figures_on`` brings the book's figures to any later day
for those who read the loan.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from domain.accrual import Arrears, accrue, interest_between
from domain.allocation import Allocation, Dues
from domain.classification import (
    BUCKET_LIMITS,
    SCORE_OVERDUE_FROM_DPD,
    bucket_for_dpd,
    classify,
)
from domain.collection import days_past_due
from domain.loan import Bucket, Installment, LoanClass, Money
from domain.policy import Policy
from domain.prepayment import PrepaymentQuote

ZERO = Decimal("0.00")


class OverdueInstallment(BaseModel):
    """What is still unpaid of one installment after its due date (逾期本息)."""

    model_config = ConfigDict(extra="forbid")

    number: int
    due_date: date
    principal: Money = Field(ge=0)
    interest: Money = Field(ge=0)


class Repaid(BaseModel):
    """Totals repaid so far, for the settlement certificate (结清证明)."""

    model_config = ConfigDict(extra="forbid")

    principal: Money = ZERO
    interest: Money = ZERO
    penalty: Money = ZERO  # penalty and compound interest


class LoanBook(BaseModel):
    """The state of a disbursed loan's account; carried from one workflow run to the next."""

    model_config = ConfigDict(extra="forbid")

    schedule: list[Installment]
    billed: int = Field(0, ge=0)  # installments whose due date has been processed
    principal_outstanding: Money = Field(ge=0)  # all principal not repaid, due or not
    overdue: list[OverdueInstallment] = Field(default_factory=list)
    penalty_interest: Money = Field(ZERO, ge=0)  # 罚息 unpaid
    compound_interest: Money = Field(ZERO, ge=0)  # 复利 unpaid
    accrued_through: date  # P-5 is accrued up to and including this day
    repaid: Repaid = Field(default_factory=Repaid)
    called_in_on: date | None = None  # the whole balance was made due (提前收回)

    @property
    def arrears(self) -> Arrears:
        return Arrears(
            overdue_principal=sum((o.principal for o in self.overdue), ZERO),
            overdue_interest=sum((o.interest for o in self.overdue), ZERO),
            penalty_interest=self.penalty_interest,
            compound_interest=self.compound_interest,
        )

    @property
    def next_installment(self) -> Installment | None:
        return self.schedule[self.billed] if self.billed < len(self.schedule) else None

    @property
    def oldest_unpaid_due(self) -> date | None:
        return self.overdue[0].due_date if self.overdue else None

    @property
    def installments_overdue(self) -> int:
        return len(self.overdue)

    @property
    def settled(self) -> bool:
        """P-7: every installment billed and nothing left to pay."""
        return (
            self.next_installment is None
            and self.principal_outstanding == 0
            and self.arrears.total == 0
        )

    def days_past_due(self, today: date) -> int:
        return days_past_due(self.oldest_unpaid_due, today)


def open_book(schedule: list[Installment], principal: Decimal, disbursed_on: date) -> LoanBook:
    return LoanBook(
        schedule=schedule, principal_outstanding=principal, accrued_through=disbursed_on
    )


def accrue_to(book: LoanBook, day: date, annual_rate: Decimal, policy: Policy) -> LoanBook:
    """P-5 up to and including ``day``: penalty on overdue principal, compound interest on
    overdue interest, for the days since the book was last accrued."""
    days = (day - book.accrued_through).days
    if days <= 0:
        return book
    grown = accrue(book.arrears, annual_rate, days, policy)
    return book.model_copy(
        update={
            "penalty_interest": grown.penalty_interest,
            "compound_interest": grown.compound_interest,
            "accrued_through": day,
        }
    )


def dues(book: LoanBook, installment: Installment | None = None) -> Dues:
    """What a payment may settle now: the arrears, and the installment falling due if any."""
    arrears = book.arrears
    return Dues(
        penalty_interest=arrears.penalty_interest + arrears.compound_interest,
        overdue_interest=arrears.overdue_interest,
        overdue_principal=arrears.overdue_principal,
        current_interest=installment.interest if installment else ZERO,
        current_principal=installment.principal if installment else ZERO,
    )


def _settle_oldest_first(
    overdue: list[OverdueInstallment], amount: Decimal, part: str
) -> list[OverdueInstallment]:
    out: list[OverdueInstallment] = []
    for item in overdue:
        share = min(amount, getattr(item, part))
        amount -= share
        out.append(item.model_copy(update={part: getattr(item, part) - share}))
    return out


def apply_payment(
    book: LoanBook, allocation: Allocation, installment: Installment | None = None
) -> LoanBook:
    """Apply an allocation made from ``dues(book, installment)`` (P-6).

    Penalty is settled before compound interest; overdue interest and principal oldest
    installment first. When ``installment`` is the one falling due, it is billed: what
    the payment did not cover becomes overdue from its due date.
    """
    if installment is not None and installment.number != book.billed + 1:
        raise ValueError(f"installment {installment.number} is not the next to bill")
    penalty_paid = min(allocation.penalty_interest, book.penalty_interest)
    compound_paid = allocation.penalty_interest - penalty_paid
    if compound_paid > book.compound_interest:
        raise ValueError("the allocation pays more penalty than is owed")
    overdue = _settle_oldest_first(book.overdue, allocation.overdue_interest, "interest")
    overdue = _settle_oldest_first(overdue, allocation.overdue_principal, "principal")
    if installment is not None:
        overdue.append(
            OverdueInstallment(
                number=installment.number,
                due_date=installment.due_date,
                principal=installment.principal - allocation.current_principal,
                interest=installment.interest - allocation.current_interest,
            )
        )
    principal_paid = allocation.overdue_principal + allocation.current_principal
    interest_paid = allocation.overdue_interest + allocation.current_interest
    return book.model_copy(
        update={
            "billed": book.billed + (installment is not None),
            "principal_outstanding": book.principal_outstanding - principal_paid,
            "overdue": [o for o in overdue if o.principal > 0 or o.interest > 0],
            "penalty_interest": book.penalty_interest - penalty_paid,
            "compound_interest": book.compound_interest - compound_paid,
            "repaid": Repaid(
                principal=book.repaid.principal + principal_paid,
                interest=book.repaid.interest + interest_paid,
                penalty=book.repaid.penalty + allocation.penalty_interest,
            ),
        }
    )


def call_in(book: LoanBook, on: date, annual_rate: Decimal, policy: Policy) -> LoanBook:
    """K-5/W-2 提前收回: the whole balance falls due on ``on``: the principal not yet due
    and its contract interest since the last due date (P-1) become one overdue amount.
    Arrears already overdue are accrued to ``on`` first (P-5); the new amount from then."""
    book = accrue_to(book, on, annual_rate, policy)
    not_due = book.principal_outstanding - book.arrears.overdue_principal
    if book.next_installment is None or not_due <= 0:
        return book
    upcoming = book.schedule[book.billed]
    since = min(upcoming.due_date - timedelta(days=upcoming.days), on)  # the period's start
    called = OverdueInstallment(
        number=book.billed + 1,
        due_date=on,
        principal=not_due,
        interest=interest_between(not_due, annual_rate, since, on, policy.interest.day_count_basis),
    )
    return book.model_copy(
        update={
            "billed": len(book.schedule),
            "overdue": [*book.overdue, called],
            "called_in_on": on,
        }
    )


def apply_prepayment(book: LoanBook, quote: PrepaymentQuote) -> LoanBook:
    """P-4: a prepayment paid: interest to date and principal settled; the unsettled
    installments replaced by the quote's schedule, recomputed by the rules (none if full)."""
    if book.arrears.total > 0:
        raise ValueError("arrears are settled before a prepayment (P-6)")
    return book.model_copy(
        update={
            "schedule": [*book.schedule[: book.billed], *quote.new_schedule],
            "principal_outstanding": book.principal_outstanding - quote.principal_prepaid,
            "repaid": book.repaid.model_copy(
                update={
                    "principal": book.repaid.principal + quote.principal_prepaid,
                    "interest": book.repaid.interest + quote.interest_to_date,
                }
            ),
        }
    )


def bill_unpaid(book: LoanBook, installment: Installment) -> LoanBook:
    """The installment falls due with nothing collected: all of it becomes overdue."""
    return apply_payment(book, Allocation(), installment)


class Standing(BaseModel):
    """Where the loan stands on a day: F-1 class, D-4 bucket, days past due."""

    model_config = ConfigDict(extra="forbid")

    days_past_due: int
    loan_class: LoanClass
    bucket: Bucket


def standing_on(
    book: LoanBook, today: date, judged: LoanClass | None, extended: bool, policy: Policy
) -> Standing:
    dpd = book.days_past_due(today)
    return Standing(
        days_past_due=dpd,
        loan_class=classify(dpd, judged=judged, extended=extended, policy=policy.classification),
        bucket=bucket_for_dpd(dpd),
    )


class AccountAsOf(BaseModel):
    """The loan's account as its workflow last left it, with what brings its figures to any
    later day without the workflow (当日口径): the contract rate now (X-6), a reviewer's
    class (F-1), whether it was extended (X-6), whether P-5 still accrues (not once written
    off, Z-1) and the loan's pinned policy."""

    model_config = ConfigDict(extra="forbid")

    as_of: date  # the workflow's day when it left the book so
    book: LoanBook
    annual_rate: Decimal
    judged_class: LoanClass | None = None
    extended: bool = False
    accruing: bool = True
    policy: Policy


class Figures(BaseModel):
    """What the loan's readers show for a day: F-1 class, D-4 bucket, days past due, and
    the arrears with penalty and compound interest accrued to that day (P-5)."""

    model_config = ConfigDict(extra="forbid")

    on: date
    days_past_due: int
    loan_class: LoanClass
    bucket: Bucket
    arrears: Money  # overdue principal and interest, penalty and compound interest
    penalty_interest: Money
    compound_interest: Money


def figures_on(account: AccountAsOf, day: date) -> Figures:
    """The loan's figures on ``day`` (never before the account's own day), by the rules the
    workflow applies at its events: ``standing_on`` and, unless written off, ``accrue_to``."""
    day = max(day, account.as_of)
    book = account.book
    standing = standing_on(book, day, account.judged_class, account.extended, account.policy)
    if account.accruing:
        book = accrue_to(book, day, account.annual_rate, account.policy)
    arrears = book.arrears
    return Figures(
        on=day,
        days_past_due=standing.days_past_due,
        loan_class=standing.loan_class,
        bucket=standing.bucket,
        arrears=arrears.total,
        penalty_interest=arrears.penalty_interest,
        compound_interest=arrears.compound_interest,
    )


def band_changes(book: LoanBook, reviewed_dpd: int, policy: Policy) -> list[int]:
    """The days past due at which the loan next changes band (F-1 class, D-4 bucket,
    F-2 score, D-1 rung), counted from the oldest unpaid due date, after the days past due
    at the last review; each is a day the workflow must wake up on even if nothing else
    happens (F-3). Counting from the last review, not from today, never skips a band."""
    if book.oldest_unpaid_due is None:
        return []
    rules = policy.classification
    collection = policy.collection
    marks = {
        1,
        SCORE_OVERDUE_FROM_DPD,
        collection.first_band_max_days + 1,
        collection.second_band_max_days + 1,
        rules.special_mention_max_dpd + 1,
        rules.substandard_max_dpd + 1,
        rules.doubtful_max_dpd + 1,
        *(limit + 1 for limit, _ in BUCKET_LIMITS),
    }
    return sorted(m for m in marks if m > reviewed_dpd)
