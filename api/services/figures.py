"""Figures as of today (当日口径): days past due, bucket (D-4), class (F-1) and the penalty and
compound interest accrued (P-5) on the day a loan is read.

The workflow writes the register only at its own events (a due date, a band of days past
due, a step), so between them the stored figures age. Every reader (the status, the
register and its CSV, the loan's and the task's pages, the notices) takes them from here:
the account the workflow last projected, brought to today by the rules the workflow itself
applies (``domain.servicing.figures_on``). Only the loans a reader shows are computed. The
workflow still acts on its own timers (F-3); this changes what is shown, nothing else.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime

from sqlmodel import Session, col, select

from domain.calendar import china_date
from domain.servicing import AccountAsOf, Figures, figures_on
from store.models import LoanAccountRecord
from workflows.messages import LoanStatus, ServicingView


def china_today() -> date:
    """The business day now (China has one time zone)."""
    return china_date(datetime.now(UTC))


def accounts_of(session: Session, loan_ids: Collection[str]) -> dict[str, AccountAsOf]:
    """The projected accounts of these loans (serviced ones only), in one query."""
    if not loan_ids:
        return {}
    rows = session.exec(
        select(LoanAccountRecord).where(col(LoanAccountRecord.loan_id).in_(list(loan_ids)))
    )
    return {row.loan_id: AccountAsOf.model_validate(row.account) for row in rows}


def figures_today(account: AccountAsOf) -> Figures:
    """The loan's figures today: the one computation every reader shows."""
    return figures_on(account, china_today())


def status_today(status: LoanStatus, account: AccountAsOf | None) -> LoanStatus:
    """The workflow's status with today's figures, when the account is the one its view was
    computed from; a projection still on its way (the workflow a moment ahead of the
    register) never replaces newer figures with older ones."""
    view = status.servicing
    if view is None or account is None or not _same_account(account, view):
        return status
    today = figures_today(account)
    return status.model_copy(
        update={
            "servicing": view.model_copy(
                update={
                    "today": today.on,
                    "days_past_due": today.days_past_due,
                    "loan_class": today.loan_class,
                    "bucket": today.bucket,
                    "arrears": today.arrears,
                    "penalty_interest": today.penalty_interest,
                    "compound_interest": today.compound_interest,
                }
            )
        }
    )


def _same_account(account: AccountAsOf, view: ServicingView) -> bool:
    then = figures_on(account, view.today)
    return account.book.principal_outstanding == view.principal_outstanding and (
        then.days_past_due,
        then.loan_class,
        then.bucket,
        then.arrears,
        then.penalty_interest,
        then.compound_interest,
    ) == (
        view.days_past_due,
        view.loan_class,
        view.bucket,
        view.arrears,
        view.penalty_interest,
        view.compound_interest,
    )
