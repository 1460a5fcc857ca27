"""LOANFLOW_TEST_START: the day the time-skipping server's clock is moved to."""

from __future__ import annotations

from datetime import date

import pytest

from tests.temporal_env import start_day


@pytest.mark.parametrize(
    ("spec", "today", "expected"),
    [
        ("--01-20", date(2026, 12, 7), date(2027, 1, 20)),
        ("--01-20", date(2027, 1, 20), date(2027, 1, 20)),
        ("--09-25", date(2027, 9, 26), date(2028, 9, 25)),
        ("--02-29", date(2026, 3, 1), date(2028, 2, 29)),
        ("2027-01-29", date(2026, 12, 7), date(2027, 1, 29)),
    ],
)
def test_the_start_day_is_the_next_one_named(spec: str, today: date, expected: date) -> None:
    assert start_day(spec, today) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [("2026-01-29", "in the past"), ("--02-30", "not a day"), ("tomorrow", "Invalid")],
)
def test_a_start_day_that_cannot_be_reached_is_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        start_day(spec, date(2026, 12, 7))
