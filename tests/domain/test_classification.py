"""Classification, buckets and score deductions: rules F-1, F-2, F-3, D-4, X-6."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.classification import (
    CreditStanding,
    ScoreEvent,
    apply_score_event,
    bucket_for_dpd,
    check_judgement,
    class_for_dpd,
    classify,
    crossed_band,
    is_worse,
    may_regrade,
    may_upgrade,
    roll_rates,
    score_events_for_dpd,
    standing_grade,
    worse_of,
)
from domain.errors import ViolationKind
from domain.loan import Bucket, CreditGrade, LoanClass
from domain.policy import ClassificationPolicy

from .conftest import POLICY

D = Decimal
RULES = POLICY.classification
N, SM, SUB, DBT, LOSS = list(LoanClass)
TODAY = date(2026, 3, 16)


# --- F-1 ---


def test_f1_order_of_classes() -> None:
    assert is_worse(SM, N) and is_worse(LOSS, DBT)
    assert not is_worse(N, SM) and not is_worse(SUB, SUB)
    assert worse_of(N, SUB) is SUB and worse_of(DBT, SM) is DBT and worse_of(SM, SM) is SM


@pytest.mark.parametrize(
    ("dpd", "expected"),
    [(0, N), (1, SM), (90, SM), (91, SUB), (180, SUB), (181, DBT), (360, DBT), (361, LOSS)],
)
def test_f1_band_boundaries(dpd: int, expected: LoanClass) -> None:
    assert class_for_dpd(dpd, RULES) is expected


def test_f1_bands_follow_the_policy() -> None:
    rules = ClassificationPolicy(special_mention_max_dpd=60)
    assert class_for_dpd(60, rules) is SM
    assert class_for_dpd(61, rules) is SUB


def test_f1_negative_days_is_a_bug() -> None:
    with pytest.raises(ValueError):
        class_for_dpd(-1, RULES)


def test_f1_x6_extended_loan_is_at_best_special_mention() -> None:
    assert classify(0, judged=None, extended=False, policy=RULES) is N
    assert classify(0, judged=None, extended=True, policy=RULES) is SM
    # Extension is a floor, not a ceiling: 100 days past due stays 次级.
    assert classify(100, judged=None, extended=True, policy=RULES) is SUB


def test_f1_judgement_only_makes_it_worse() -> None:
    assert classify(10, judged=DBT, extended=False, policy=RULES) is DBT
    # A judgement of 正常 on a loan 100 days past due changes nothing.
    assert classify(100, judged=N, extended=False, policy=RULES) is SUB
    assert classify(0, judged=N, extended=True, policy=RULES) is SM


def test_f1_judgement_better_than_floor_refused() -> None:
    refusals = check_judgement(N, SM, "borrower paid yesterday")
    assert [(r.rule, r.field, r.kind) for r in refusals] == [
        ("F-1", "loan_class", ViolationKind.INVALID)
    ]


def test_f1_judgement_needs_a_reason() -> None:
    refusals = check_judgement(SUB, SM, "   ")
    assert [(r.rule, r.field) for r in refusals] == [("F-1", "reason")]
    both = check_judgement(N, SUB, "")
    assert [r.field for r in both] == ["loan_class", "reason"]


def test_f1_judgement_equal_or_worse_accepted() -> None:
    assert check_judgement(SM, SM, "confirmed on inspection") == []
    assert check_judgement(DBT, SM, "borrower missing since May, guarantor bankrupt") == []


# --- F-3 ---


def test_f3_crossing_a_band() -> None:
    assert crossed_band(0, 1, RULES)  # 正常 -> 关注
    assert crossed_band(90, 91, RULES)  # 关注 -> 次级
    assert crossed_band(360, 361, RULES)  # 可疑 -> 损失
    assert crossed_band(95, 0, RULES)  # paid back: 次级 -> 正常


def test_f3_moving_inside_a_band() -> None:
    assert not crossed_band(1, 90, RULES)
    assert not crossed_band(181, 360, RULES)
    assert not crossed_band(0, 0, RULES)


# --- D-4 ---


@pytest.mark.parametrize(
    ("dpd", "expected"),
    [
        (0, Bucket.CURRENT),
        (1, Bucket.M1),
        (30, Bucket.M1),
        (31, Bucket.M2),
        (60, Bucket.M2),
        (61, Bucket.M3),
        (90, Bucket.M3),
        (91, Bucket.M3_PLUS),
        (400, Bucket.M3_PLUS),
    ],
)
def test_d4_buckets(dpd: int, expected: Bucket) -> None:
    assert bucket_for_dpd(dpd) is expected


def test_d4_roll_rates_small_register() -> None:
    cur, m1, m2, m3 = Bucket.CURRENT, Bucket.M1, Bucket.M2, Bucket.M3
    before = {"a": cur, "b": cur, "c": cur, "d": m1, "e": m1, "f": m2, "g": m2}
    after = {"a": cur, "b": cur, "c": m1, "d": m2, "e": cur, "f": m3, "h": m1}
    # current: 3 loans, 2 stay (2/3 = 0.6667), 1 rolls to M1 (1/3 = 0.3333).
    # M1: d rolls forward, e cures: 1/2 each. M2: f rolls to M3 (1/1);
    # g (closed) and h (new) are in one snapshot only and left out.
    assert roll_rates(before, after) == {
        (cur, cur): D("0.6667"),
        (cur, m1): D("0.3333"),
        (m1, cur): D("0.5000"),
        (m1, m2): D("0.5000"),
        (m2, m3): D("1.0000"),
    }


def test_d4_roll_rates_empty() -> None:
    assert roll_rates({}, {"a": Bucket.M1}) == {}
    assert roll_rates({"a": Bucket.M1}, {}) == {}


# --- F-2 events ---


def test_f2_overdue_30_from_the_thirtieth_day() -> None:
    assert score_events_for_dpd(28, 29, SM, set()) == []
    assert score_events_for_dpd(29, 30, SM, set()) == [ScoreEvent.OVERDUE_30_TO_90]
    assert score_events_for_dpd(30, 31, SM, {ScoreEvent.OVERDUE_30_TO_90}) == []


def test_f2_over_90_on_reaching_substandard() -> None:
    done = {ScoreEvent.OVERDUE_30_TO_90}
    assert score_events_for_dpd(89, 90, SM, done) == []
    assert score_events_for_dpd(90, 91, SUB, done) == [ScoreEvent.OVERDUE_OVER_90]


def test_f2_substandard_by_judgement_counts_without_days() -> None:
    assert score_events_for_dpd(0, 0, SUB, set()) == [ScoreEvent.OVERDUE_OVER_90]


def test_f2_doubtful_or_loss() -> None:
    done = {ScoreEvent.OVERDUE_30_TO_90, ScoreEvent.OVERDUE_OVER_90}
    assert score_events_for_dpd(180, 181, DBT, done) == [ScoreEvent.DOUBTFUL_OR_LOSS]
    assert score_events_for_dpd(360, 361, LOSS, {*done, ScoreEvent.DOUBTFUL_OR_LOSS}) == []


def test_f2_a_jump_triggers_every_event_passed() -> None:
    assert score_events_for_dpd(0, 200, DBT, set()) == [
        ScoreEvent.OVERDUE_30_TO_90,
        ScoreEvent.OVERDUE_OVER_90,
        ScoreEvent.DOUBTFUL_OR_LOSS,
    ]


def test_f2_payment_in_between_does_not_lose_the_event() -> None:
    # 35 days past due, then paid: the 30-day mark was reached.
    assert score_events_for_dpd(35, 0, N, set()) == [ScoreEvent.OVERDUE_30_TO_90]


def test_f2_each_event_once_over_a_loans_life() -> None:
    """Day by day from 0 to 400 days past due, as the workflow would see it."""
    standing = CreditStanding(score=85)
    already: set[ScoreEvent] = set()
    fired: list[tuple[int, ScoreEvent]] = []
    for dpd in range(1, 401):
        cls = classify(dpd, judged=None, extended=False, policy=RULES)
        for event in score_events_for_dpd(dpd - 1, dpd, cls, already):
            already.add(event)
            fired.append((dpd, event))
            standing = apply_score_event(standing, event, TODAY, POLICY)
    assert fired == [
        (30, ScoreEvent.OVERDUE_30_TO_90),
        (91, ScoreEvent.OVERDUE_OVER_90),
        (181, ScoreEvent.DOUBTFUL_OR_LOSS),
    ]
    # 85 - 15 = 70; 70 - 50 = 20; 20 - 60 < 0 -> 0.
    assert standing.score == 0


# --- F-2 scores ---


def test_f2_deductions_from_the_policy() -> None:
    s = CreditStanding(score=85)
    assert apply_score_event(s, ScoreEvent.OVERDUE_30_TO_90, TODAY, POLICY).score == 70
    assert apply_score_event(s, ScoreEvent.OVERDUE_OVER_90, TODAY, POLICY).score == 35
    assert apply_score_event(s, ScoreEvent.DOUBTFUL_OR_LOSS, TODAY, POLICY).score == 25
    assert apply_score_event(s, ScoreEvent.PURPOSE_CHANGED, TODAY, POLICY).score == 70
    assert s.score == 85  # the standing given is not changed


def test_f2_score_floor_zero() -> None:
    s = CreditStanding(score=10)
    assert apply_score_event(s, ScoreEvent.OVERDUE_OVER_90, TODAY, POLICY).score == 0


def test_f2_funds_to_third_party_blocks_upgrades_two_years() -> None:
    s = apply_score_event(CreditStanding(score=85), ScoreEvent.FUNDS_TO_THIRD_PARTY, TODAY, POLICY)
    assert s.score == 55  # 85 - 30
    assert s.no_upgrade_until == date(2028, 3, 16)
    assert not may_upgrade(s, date(2028, 3, 15))
    assert may_upgrade(s, date(2028, 3, 16))
    assert may_regrade(s, TODAY)


def test_f2_restriction_from_a_leap_day() -> None:
    s = apply_score_event(
        CreditStanding(score=85), ScoreEvent.FUNDS_TO_THIRD_PARTY, date(2028, 2, 29), POLICY
    )
    assert s.no_upgrade_until == date(2030, 2, 28)


def test_f2_later_restriction_is_kept() -> None:
    s = CreditStanding(score=85, no_upgrade_until=date(2029, 1, 1))
    s = apply_score_event(s, ScoreEvent.FUNDS_TO_THIRD_PARTY, TODAY, POLICY)
    assert s.no_upgrade_until == date(2029, 1, 1)


def test_f2_crime_grade_c_no_grading_five_years() -> None:
    s = apply_score_event(CreditStanding(score=85), ScoreEvent.CRIME, TODAY, POLICY)
    assert s.score == 39  # one under B's floor of 40: grade C
    assert s.no_grading_until == date(2031, 3, 16)
    assert s.grade_floor_c_until == date(2031, 3, 16)
    assert standing_grade(s, TODAY, POLICY.eligibility) is CreditGrade.C
    assert not may_regrade(s, date(2031, 3, 15)) and not may_upgrade(s, date(2031, 3, 15))
    assert may_regrade(s, date(2031, 3, 16))


def test_f2_crime_never_raises_a_lower_score() -> None:
    s = apply_score_event(CreditStanding(score=20), ScoreEvent.CRIME, TODAY, POLICY)
    assert s.score == 20


def test_f2_grade_held_at_c_until_the_day() -> None:
    s = CreditStanding(score=95, grade_floor_c_until=date(2031, 3, 16))
    assert standing_grade(s, date(2031, 3, 15), POLICY.eligibility) is CreditGrade.C
    assert standing_grade(s, date(2031, 3, 16), POLICY.eligibility) is CreditGrade.AAA


def test_f2_score_out_of_range_rejected() -> None:
    with pytest.raises(ValueError):
        CreditStanding(score=101)
