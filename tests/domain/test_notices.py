"""What borrowers and staff are told (H-3: no internal figures reach the borrower)."""

from __future__ import annotations

from domain.errors import Refusal
from domain.notices import borrower_reasons, task_labels


def test_h3_borrower_hears_conditions_not_scores() -> None:
    refusals = [
        Refusal(rule="E-4", message="credit score 55 is below the minimum 60"),
        Refusal(rule="E-9", message="amount 90,000.00 exceeds 50% of income"),
        Refusal(rule="E-4", message="rating of 2024-01-02 has expired"),
    ]
    text = borrower_reasons(refusals)
    assert text == "信用条件、贷款金额"
    assert "55" not in text and "60" not in text


def test_unknown_rule_gets_the_general_wording() -> None:
    assert borrower_reasons([Refusal(rule="Z-9", message="x")]) == "不符合贷款条件"


def test_task_labels_in_chinese_once_each() -> None:
    assert task_labels(["investigate", "investigate", "review"]) == "贷前调查、审查"
