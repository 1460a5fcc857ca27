"""Five-level classification (五级分类), register buckets and credit-score deductions.

Rules F-1 (class from days past due, judgement may only lower it), F-2 (score
deductions), F-3 (when to reclassify) and D-4 (M1/M2/M3 buckets, roll rates).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from domain.eligibility import credit_grade
from domain.errors import Refusal, ViolationKind
from domain.loan import Bucket, CreditGrade, LoanClass
from domain.policy import ClassificationPolicy, EligibilityPolicy, Policy
from domain.schedule import add_months

_CLASS_ORDER = list(LoanClass)  # best first

# D-4 fixes the buckets themselves (not a policy parameter): M1 1-30, M2 31-60, M3 61-90.
BUCKET_LIMITS = ((30, Bucket.M1), (60, Bucket.M2), (90, Bucket.M3))  # D-4, inclusive
# F-2 "overdue 30-90 days": the lower end is the rulebook's, no policy parameter.
SCORE_OVERDUE_FROM_DPD = 30
_RATE_PLACES = Decimal("0.0001")
_BUCKET_ORDER = {bucket: i for i, bucket in enumerate(Bucket)}


# --- F-1 classes ---


def is_worse(a: LoanClass, b: LoanClass) -> bool:
    """True when ``a`` is strictly worse than ``b`` (正常 < 关注 < 次级 < 可疑 < 损失)."""
    return _CLASS_ORDER.index(a) > _CLASS_ORDER.index(b)


def worse_of(a: LoanClass, b: LoanClass) -> LoanClass:
    return a if is_worse(a, b) else b


def class_for_dpd(days_past_due: int, policy: ClassificationPolicy) -> LoanClass:
    """The floor class for days past due (rule F-1): 0 正常, 1-90 关注, 91-180 次级,
    181-360 可疑, beyond 损失 (band ends from the policy, inclusive)."""
    if days_past_due < 0:
        raise ValueError(f"days past due cannot be negative, got {days_past_due}")
    if days_past_due == 0:
        return LoanClass.NORMAL
    if days_past_due <= policy.special_mention_max_dpd:
        return LoanClass.SPECIAL_MENTION
    if days_past_due <= policy.substandard_max_dpd:
        return LoanClass.SUBSTANDARD
    if days_past_due <= policy.doubtful_max_dpd:
        return LoanClass.DOUBTFUL
    return LoanClass.LOSS


def classify(
    days_past_due: int,
    *,
    judged: LoanClass | None,
    extended: bool,
    policy: ClassificationPolicy,
) -> LoanClass:
    """The loan's class (rules F-1, X-6): the days-past-due floor, at best 关注 once
    extended, and a reviewer's judgement only where it is worse."""
    result = class_for_dpd(days_past_due, policy)
    if extended:
        result = worse_of(result, LoanClass.SPECIAL_MENTION)
    if judged is not None:
        result = worse_of(result, judged)
    return result


def check_judgement(proposed: LoanClass, floor: LoanClass, reason: str) -> list[Refusal]:
    """Rule F-1: a reviewer may put a loan lower than its floor, never higher, with a reason.

    ``floor`` is what ``classify`` gives without the judgement.
    """
    out: list[Refusal] = []
    if is_worse(floor, proposed):
        out.append(
            Refusal(
                rule="F-1",
                message=f"class {proposed} is better than the floor {floor}; "
                "a loan may be classified lower by judgement, never higher",
                field="loan_class",
                kind=ViolationKind.INVALID,
            )
        )
    if not reason.strip():
        out.append(
            Refusal(
                rule="F-1",
                message="a classification by judgement states its reason",
                field="reason",
                kind=ViolationKind.INVALID,
            )
        )
    return out


def crossed_band(previous_dpd: int, dpd: int, policy: ClassificationPolicy) -> bool:
    """Rule F-3: reclassify when days past due move into another F-1 band.

    (F-3 also reclassifies on every inspection; that is the caller's trigger.)
    """
    return class_for_dpd(previous_dpd, policy) != class_for_dpd(dpd, policy)


# --- D-4 buckets ---


def bucket_for_dpd(days_past_due: int) -> Bucket:
    """Register bucket (rule D-4): 0 current, 1-30 M1, 31-60 M2, 61-90 M3, over 90 M3+."""
    if days_past_due < 0:
        raise ValueError(f"days past due cannot be negative, got {days_past_due}")
    if days_past_due == 0:
        return Bucket.CURRENT
    for limit, bucket in BUCKET_LIMITS:
        if days_past_due <= limit:
            return bucket
    return Bucket.M3_PLUS


def roll_rates(
    before: dict[str, Bucket], after: dict[str, Bucket]
) -> dict[tuple[Bucket, Bucket], Decimal]:
    """Roll rates between two register snapshots keyed by loan id (rule D-4, 迁徙率).

    For each from-bucket, the share of its loans (those present in both snapshots) that
    are in each to-bucket afterwards, to 4 places (half up). Loans only in ``before``
    (closed, written off) or only in ``after`` (new) are left out; pairs no loan took are
    absent, i.e. zero. Rounded shares of one from-bucket may sum to 0.9999 or 1.0001.
    """
    moves = Counter((before[loan], after[loan]) for loan in before if loan in after)
    totals: Counter[Bucket] = Counter()
    for (source, _), count in moves.items():
        totals[source] += count
    return {
        (source, target): (Decimal(count) / Decimal(totals[source])).quantize(
            _RATE_PLACES, ROUND_HALF_UP
        )
        for (source, target), count in sorted(
            moves.items(), key=lambda m: (_BUCKET_ORDER[m[0][0]], _BUCKET_ORDER[m[0][1]])
        )
    }


# --- F-2 credit score ---


class ScoreEvent(StrEnum):
    """Events that lower the borrower's credit score (rule F-2)."""

    OVERDUE_30_TO_90 = "overdue_30_to_90"
    OVERDUE_OVER_90 = "overdue_over_90"  # also on reaching 次级
    DOUBTFUL_OR_LOSS = "doubtful_or_loss"  # 可疑 / 损失
    PURPOSE_CHANGED = "purpose_changed"  # without consent
    FUNDS_TO_THIRD_PARTY = "funds_to_third_party"
    CRIME = "crime"


class CreditStanding(BaseModel):
    """The household's score and the F-2 restrictions on its grade (信用等级).

    ``grade_floor_c_until``: the grade counts as C until this day whatever the score;
    ``no_upgrade_until``: no better grade before this day; ``no_grading_until``: no new
    rating before this day. Each restriction ends on (not after) its day.
    """

    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=0, le=100)
    grade_floor_c_until: date | None = None
    no_upgrade_until: date | None = None
    no_grading_until: date | None = None


def score_events_for_dpd(
    previous_dpd: int, dpd: int, loan_class: LoanClass, already: set[ScoreEvent]
) -> list[ScoreEvent]:
    """The F-2 events a change in days past due (or class) triggers, not yet in ``already``.

    Each event counts once per loan and they are cumulative: a loan that reaches 可疑
    has lost 15, then 50, then 60 points. The days reached are the higher of
    ``previous_dpd`` and ``dpd``, so a payment in between does not lose an event.
    "Over 90 days or 次级" and "可疑/损失" are read from ``loan_class``, which under F-1
    is 次级 or worse past 90 days, and which a reviewer's judgement may also set.
    """
    reached = max(previous_dpd, dpd)
    due: list[ScoreEvent] = []
    if reached >= SCORE_OVERDUE_FROM_DPD:
        due.append(ScoreEvent.OVERDUE_30_TO_90)
    if not is_worse(LoanClass.SUBSTANDARD, loan_class):
        due.append(ScoreEvent.OVERDUE_OVER_90)
    if not is_worse(LoanClass.DOUBTFUL, loan_class):
        due.append(ScoreEvent.DOUBTFUL_OR_LOSS)
    return [event for event in due if event not in already]


def _years_after(day: date, years: int) -> date:
    return add_months(day, 12 * years)  # 02-29 + 1 year -> 02-28


def _later(a: date | None, b: date) -> date:
    return b if a is None or b > a else a


def apply_score_event(
    standing: CreditStanding, event: ScoreEvent, on: date, policy: Policy
) -> CreditStanding:
    """The standing after one F-2 event on a day; the score never goes below 0.

    Takes the whole policy: deductions come from ``classification``, and "grade C" for a
    crime is one point under the lowest floor of ``eligibility`` (39 by default). A crime
    never raises a lower score, and its C grade and rating ban last ``no_grading_years_crime``.
    Funds to a third party block upgrades for ``no_upgrade_years_third_party`` years.
    Restrictions already further out are kept.
    """
    rules = policy.classification
    deltas = {
        ScoreEvent.OVERDUE_30_TO_90: rules.score_overdue_30_90,
        ScoreEvent.OVERDUE_OVER_90: rules.score_overdue_over_90,
        ScoreEvent.DOUBTFUL_OR_LOSS: rules.score_doubtful_or_loss,
        ScoreEvent.PURPOSE_CHANGED: rules.score_purpose_changed,
        ScoreEvent.FUNDS_TO_THIRD_PARTY: rules.score_funds_to_third_party,
    }
    if event is ScoreEvent.CRIME:
        grade_c_score = min(policy.eligibility.grade_floors.values()) - 1
        until = _years_after(on, rules.no_grading_years_crime)
        return standing.model_copy(
            update={
                "score": max(0, min(standing.score, grade_c_score)),
                "grade_floor_c_until": _later(standing.grade_floor_c_until, until),
                "no_grading_until": _later(standing.no_grading_until, until),
            }
        )
    update: dict[str, object] = {"score": max(0, standing.score + deltas[event])}
    if event is ScoreEvent.FUNDS_TO_THIRD_PARTY:
        until = _years_after(on, rules.no_upgrade_years_third_party)
        update["no_upgrade_until"] = _later(standing.no_upgrade_until, until)
    return standing.model_copy(update=update)


def standing_grade(standing: CreditStanding, on: date, policy: EligibilityPolicy) -> CreditGrade:
    """The grade a standing gives on a day (E-4), held at C while a crime's restriction runs."""
    if standing.grade_floor_c_until is not None and on < standing.grade_floor_c_until:
        return CreditGrade.C
    return credit_grade(standing.score, policy)


def may_upgrade(standing: CreditStanding, on: date) -> bool:
    """F-2: whether a better grade may be given on a day (no upgrade, no grading bans)."""
    return all(
        until is None or on >= until
        for until in (standing.no_upgrade_until, standing.no_grading_until)
    )


def may_regrade(standing: CreditStanding, on: date) -> bool:
    """F-2: whether the household may be rated at all on a day (crime: no grading)."""
    return standing.no_grading_until is None or on >= standing.no_grading_until
