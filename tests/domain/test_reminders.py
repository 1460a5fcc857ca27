"""Reminders before due dates (还款提醒, 贷款到期通知书), rule P-3."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.loan import Installment, RepaymentMethod
from domain.policy import Policy, RepaymentPolicy
from domain.reminders import Reminder, reminders
from domain.schedule import build_schedule
from tests.domain.conftest import POLICY

D = Decimal
M = RepaymentMethod
START = date(2026, 1, 31)


def plan(
    method: RepaymentMethod, term: int, start: date = START, rate: str = "0.072"
) -> list[Installment]:
    return build_schedule(D("10000"), D(rate), term, method, start)


def test_p3_lump_sum_six_months() -> None:
    # due 2026-09-16: maturity notice 10 days before (term ≤ 12), interest reminder 5 days
    lines = plan(M.LUMP_SUM, 6, date(2026, 3, 16))
    due = date(2026, 9, 16)
    assert reminders(lines, M.LUMP_SUM, 6, POLICY) == [
        Reminder(kind="maturity", send_on=date(2026, 9, 6), due_date=due, installment=1),
        Reminder(kind="interest", send_on=date(2026, 9, 11), due_date=due, installment=1),
    ]


def test_p3_interest_monthly_twenty_four_months() -> None:
    # maturity 2028-01-31: notice 30 days before (term > 12) on 2028-01-01
    lines = plan(M.INTEREST_MONTHLY, 24)
    out = reminders(lines, M.INTEREST_MONTHLY, 24, POLICY)
    interest = [r for r in out if r.kind == "interest"]
    maturity = [r for r in out if r.kind == "maturity"]
    assert len(interest) == 24
    assert interest[0] == Reminder(
        kind="interest", send_on=date(2026, 2, 23), due_date=date(2026, 2, 28), installment=1
    )
    assert maturity == [
        Reminder(
            kind="maturity", send_on=date(2028, 1, 1), due_date=date(2028, 1, 31), installment=24
        )
    ]
    # sorted by day: the notice of 01-01 comes between the reminders of 12-26 and 01-26
    days = [r.send_on for r in out]
    assert days == sorted(days)
    assert out[-2:] == [maturity[0], interest[-1]]


def test_p3_installment_loans_get_no_maturity_notice() -> None:
    for method in (M.EQUAL_INSTALLMENT, M.EQUAL_PRINCIPAL):
        out = reminders(plan(method, 12), method, 12, POLICY)
        assert {r.kind for r in out} == {"interest"}
        assert [r.installment for r in out] == list(range(1, 13))
        assert out[-1].send_on == date(2027, 1, 26)


def test_p3_quarterly_interest_dates_and_short_term_notice() -> None:
    out = reminders(plan(M.INTEREST_QUARTERLY, 12), M.INTEREST_QUARTERLY, 12, POLICY)
    assert [(r.kind, r.send_on) for r in out] == [
        ("interest", date(2026, 4, 25)),
        ("interest", date(2026, 7, 26)),
        ("interest", date(2026, 10, 26)),
        ("maturity", date(2027, 1, 21)),
        ("interest", date(2027, 1, 26)),
    ]


def test_p3_twelve_months_is_short_thirteen_is_long() -> None:
    twelve = reminders(plan(M.INTEREST_MONTHLY, 12), M.INTEREST_MONTHLY, 12, POLICY)
    thirteen = reminders(plan(M.INTEREST_MONTHLY, 13), M.INTEREST_MONTHLY, 13, POLICY)
    [short] = [r for r in twelve if r.kind == "maturity"]
    [long] = [r for r in thirteen if r.kind == "maturity"]
    assert (short.due_date - short.send_on).days == 10
    assert (long.due_date - long.send_on).days == 30


def test_p3_no_interest_no_interest_reminder() -> None:
    lines = plan(M.LUMP_SUM, 6, rate="0")
    assert [r.kind for r in reminders(lines, M.LUMP_SUM, 6, POLICY)] == ["maturity"]


def test_p3_same_day_interest_before_maturity_and_days_from_the_policy() -> None:
    policy = Policy(
        version="t",
        effective_from=date(2026, 1, 1),
        institution="x",
        repayment=RepaymentPolicy(interest_reminder_days=7, maturity_notice_days_short=7),
    )
    out = reminders(plan(M.LUMP_SUM, 6, date(2026, 3, 16)), M.LUMP_SUM, 6, policy)
    assert [(r.kind, r.send_on) for r in out] == [
        ("interest", date(2026, 9, 9)),
        ("maturity", date(2026, 9, 9)),
    ]


def test_p3_empty_schedule_has_no_reminders() -> None:
    assert reminders([], M.LUMP_SUM, 6, POLICY) == []
