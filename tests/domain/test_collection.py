"""Overdue collection: rules D-1, D-2, D-3 and days past due."""

from __future__ import annotations

from datetime import date

import pytest

from adapters.calendar import official_year
from domain.calendar import WorkingCalendar
from domain.collection import (
    RUNG_ACTIONS,
    Rung,
    days_past_due,
    next_renotice,
    overdue_notice_due,
    receipt_deadline,
    receipt_missing,
    rung_deadline,
    rung_for,
)
from domain.policy import CalendarPolicy

from .conftest import POLICY

RULES = POLICY.collection


def calendar() -> WorkingCalendar:
    return WorkingCalendar(CalendarPolicy(), resolve=official_year)


# --- D-1 rungs ---


@pytest.mark.parametrize(
    ("installments", "dpd", "rung"),
    [
        (0, 0, None),
        (1, 1, Rung.REMINDER),
        (1, 30, Rung.REMINDER),
        (1, 31, Rung.VISIT_AND_NOTICE),  # days are worse than the count
        (2, 10, Rung.VISIT_AND_NOTICE),  # the count is worse than the days
        (1, 60, Rung.VISIT_AND_NOTICE),
        (1, 61, Rung.ON_SITE),
        (3, 5, Rung.ON_SITE),
        (7, 200, Rung.ON_SITE),
        (0, 45, Rung.VISIT_AND_NOTICE),  # a lump-sum loan: days alone
        (0, 3, Rung.REMINDER),
    ],
)
def test_d1_rung(installments: int, dpd: int, rung: Rung | None) -> None:
    assert rung_for(installments, dpd, RULES) is rung


def test_d1_negative_counts_are_a_bug() -> None:
    with pytest.raises(ValueError):
        rung_for(-1, 0, RULES)


def test_d1_three_missed_installments_step_up() -> None:
    due = [date(2026, 1, 15), date(2026, 2, 15), date(2026, 3, 15)]
    # 01-16: one missed, 1 day; 02-16: two, 32 days; 03-16: three, 60 days.
    assert rung_for(1, days_past_due(due[0], date(2026, 1, 16)), RULES) is Rung.REMINDER
    assert rung_for(2, days_past_due(due[0], date(2026, 2, 16)), RULES) is Rung.VISIT_AND_NOTICE
    assert days_past_due(due[0], date(2026, 3, 16)) == 60
    assert rung_for(3, 60, RULES) is Rung.ON_SITE


def test_d1_every_rung_has_actions() -> None:
    assert set(RUNG_ACTIONS) == set(Rung)
    assert all(RUNG_ACTIONS[r] for r in Rung)


def test_d1_reminder_within_5_working_days_over_a_weekend() -> None:
    # Fri 03-13: Mon 16 (1), 17, 18, 19, Fri 20 (5).
    assert rung_deadline(Rung.REMINDER, date(2026, 3, 13), calendar(), RULES) == date(2026, 3, 20)


def test_d1_reminder_across_national_day_2026() -> None:
    # Wed 09-30; 10-01..07 off; 08 (1), 09 (2), Sat 10 adjusted (3), 12 (4), 13 (5).
    assert rung_deadline(Rung.REMINDER, date(2026, 9, 30), calendar(), RULES) == date(2026, 10, 13)


def test_d1_reminder_across_mid_autumn_and_national_day_2026() -> None:
    # Thu 09-24; Fri 25 Mid-Autumn, weekend; Mon 28 (1), 29 (2), 30 (3), 10-08 (4), 09 (5).
    assert rung_deadline(Rung.REMINDER, date(2026, 9, 24), calendar(), RULES) == date(2026, 10, 9)


def test_d1_visit_and_on_site_use_the_institutions_deadline() -> None:
    # Mon 03-16 + 10 working days = Mon 03-30.
    for rung in (Rung.VISIT_AND_NOTICE, Rung.ON_SITE):
        assert rung_deadline(rung, date(2026, 3, 16), calendar(), RULES) == date(2026, 3, 30)


# --- D-2 ---


def test_d2_overdue_notice_within_15_days() -> None:
    assert overdue_notice_due(date(2026, 3, 17), RULES) == date(2026, 4, 1)
    assert overdue_notice_due(date(2026, 1, 25), RULES) == date(2026, 2, 9)  # over a month end


# --- D-3 ---


def test_d3_renotice_every_six_months_individual_three_company() -> None:
    assert next_renotice(date(2026, 8, 31), False, RULES) == date(2027, 2, 28)
    assert next_renotice(date(2026, 8, 31), True, RULES) == date(2026, 11, 30)


def test_d3_receipt_within_30_days() -> None:
    sent = date(2026, 3, 16)
    assert receipt_deadline(sent, RULES) == date(2026, 4, 15)
    assert not receipt_missing(sent, None, date(2026, 4, 15), RULES)  # still waiting
    assert receipt_missing(sent, None, date(2026, 4, 16), RULES)
    assert not receipt_missing(sent, date(2026, 4, 15), date(2026, 5, 1), RULES)


def test_d3_late_receipt_does_not_count() -> None:
    sent = date(2026, 3, 16)
    assert receipt_missing(sent, date(2026, 4, 16), date(2026, 5, 1), RULES)


# --- days past due ---


def test_days_past_due() -> None:
    due = date(2026, 3, 16)
    assert days_past_due(None, due) == 0
    assert days_past_due(due, date(2026, 3, 15)) == 0
    assert days_past_due(due, due) == 0  # the due date itself is not overdue
    assert days_past_due(due, date(2026, 3, 17)) == 1
    # 01-31 -> 02-28 is 28 days, -> 03-02 is 30.
    assert days_past_due(date(2026, 1, 31), date(2026, 3, 2)) == 30
