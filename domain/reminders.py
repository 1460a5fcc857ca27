"""Reminders before due dates (还款提醒, 贷款到期通知书), rule P-3.

Only dates are computed here; sending them, and skipping any whose day has passed, is
the workflow's business.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.loan import Installment, RepaymentMethod
from domain.policy import Policy

# P-3: installment loans get no maturity notice.
INSTALLMENT_METHODS = frozenset(
    {RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL}
)


class Reminder(BaseModel):
    """One reminder: an interest reminder (SMS) or the maturity notice (贷款到期通知书)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["interest", "maturity"]
    send_on: date
    due_date: date
    installment: int


def reminders(
    schedule: list[Installment], method: RepaymentMethod, term_months: int, policy: Policy
) -> list[Reminder]:
    """Rule P-3 for a schedule, sorted by ``send_on`` then kind.

    An interest reminder before every due date that carries interest, whatever the
    method; a maturity notice before maturity except for installment loans (等额本息,
    等额本金). Its lead time is the short one for terms up to the E-14 boundary
    (``short_term_max_months``, 12 months: the same short-term line), the long one beyond.
    """
    rules = policy.repayment
    out = [
        Reminder(
            kind="interest",
            send_on=line.due_date - timedelta(days=rules.interest_reminder_days),
            due_date=line.due_date,
            installment=line.number,
        )
        for line in schedule
        if line.interest > 0
    ]
    if schedule and method not in INSTALLMENT_METHODS:
        last = schedule[-1]
        short = term_months <= policy.eligibility.short_term_max_months
        lead = rules.maturity_notice_days_short if short else rules.maturity_notice_days_long
        out.append(
            Reminder(
                kind="maturity",
                send_on=last.due_date - timedelta(days=lead),
                due_date=last.due_date,
                installment=last.number,
            )
        )
    return sorted(out, key=lambda r: (r.send_on, r.kind, r.installment))
