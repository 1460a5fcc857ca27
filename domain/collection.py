"""Overdue collection (逾期催收): the D-1 ladder, the D-2 notice, D-3 re-notices.

Dates only: the workflow turns them into timed tasks and SMS.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import IntEnum

from domain.calendar import WorkingCalendar
from domain.policy import CollectionPolicy
from domain.schedule import add_months


class Rung(IntEnum):
    """A step of the D-1 ladder; higher is more serious."""

    REMINDER = 1  # 电话/短信提醒
    VISIT_AND_NOTICE = 2  # 上门催收, 书面催收通知
    ON_SITE = 3  # 现场调查, 资产保全


RUNG_ACTIONS: dict[Rung, tuple[str, ...]] = {
    Rung.REMINDER: (
        "phone or SMS reminder, recorded (电话/短信提醒)",
        "tell the guarantor and the insurer (告知担保人、保险机构)",
    ),
    Rung.VISIT_AND_NOTICE: (
        "meet or visit the borrower (约见或上门)",
        "written collection notice with signed receipt (书面催收通知, 签收回执)",
        "agree a repayment plan (还款计划)",
    ),
    Rung.ON_SITE: (
        "on-site investigation (现场调查)",
        "asset-preservation measures (资产保全)",
    ),
}


def rung_for(
    installments_overdue: int, days_past_due: int, policy: CollectionPolicy
) -> Rung | None:
    """Rule D-1: the rung by installments overdue (1, 2, 3+) or by days past due
    (≤ 30, 31-60, > 60), whichever is worse; None when nothing is overdue.

    Days alone serve loans without installments (lump sum, interest arrears).
    """
    if installments_overdue < 0 or days_past_due < 0:
        raise ValueError(
            f"overdue counts cannot be negative: {installments_overdue} installments, "
            f"{days_past_due} days"
        )
    if installments_overdue == 0 and days_past_due == 0:
        return None
    by_count = Rung(min(installments_overdue, 3)) if installments_overdue else Rung.REMINDER
    if days_past_due > policy.second_band_max_days:
        by_days = Rung.ON_SITE
    elif days_past_due > policy.first_band_max_days:
        by_days = Rung.VISIT_AND_NOTICE
    else:
        by_days = Rung.REMINDER
    return max(by_count, by_days)


def rung_deadline(
    rung: Rung, reached_on: date, calendar: WorkingCalendar, policy: CollectionPolicy
) -> date:
    """Rule D-1: when a rung's actions must be done, in working days from reaching it.

    The rulebook sets 5 working days for the reminder only; the visit and on-site rungs
    take ``visit_working_days``, the institution's choice.
    """
    days = (
        policy.first_reminder_working_days if rung is Rung.REMINDER else policy.visit_working_days
    )
    return calendar.add_working_days(reached_on, days)


def overdue_notice_due(overdue_since: date, policy: CollectionPolicy) -> date:
    """Rule D-2: the overdue notice (逾期贷款催收通知书) to borrower and guarantor within
    ``overdue_notice_days`` calendar days of the day the amount fell overdue."""
    return overdue_since + timedelta(days=policy.overdue_notice_days)


def next_renotice(last_notice_on: date, company: bool, policy: CollectionPolicy) -> date:
    """Rule D-3: the latest day for the next notice with receipt, so the 3-year limitation
    period (诉讼时效) never runs out: 6 months for individuals, 3 for companies."""
    months = policy.renotice_months_company if company else policy.renotice_months_individual
    return add_months(last_notice_on, months)


def receipt_deadline(notice_sent_on: date, policy: CollectionPolicy) -> date:
    """Rule D-3: the last day a signed receipt (回执) may come back."""
    return notice_sent_on + timedelta(days=policy.receipt_wait_days)


def receipt_missing(
    notice_sent_on: date, receipt_on: date | None, today: date, policy: CollectionPolicy
) -> bool:
    """Rule D-3: True once the wait is over with no receipt within it; that opens a task
    for a visit, notarised delivery, payment order or lawsuit.

    A receipt dated after the deadline (or after ``today``) does not count.
    """
    deadline = receipt_deadline(notice_sent_on, policy)
    if today <= deadline:
        return False
    return receipt_on is None or receipt_on > deadline or receipt_on > today


def days_past_due(oldest_unpaid_due: date | None, today: date) -> int:
    """Days since the oldest unpaid due date: 0 on the due date itself, 1 the day after
    (penalty interest starts then too, P-5); 0 when nothing is unpaid."""
    if oldest_unpaid_due is None:
        return 0
    return max(0, (today - oldest_unpaid_due).days)
