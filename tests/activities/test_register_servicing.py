"""The register after disbursement: post-loan columns (F-1, D-4), the credit score
register (F-2) and the blacklist (D-5, read back for E-4/E-6 at intake)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import col, select
from temporalio.testing import ActivityEnvironment

from activities.register import (
    BlacklistHouseholdInput,
    HouseholdCredit,
    HouseholdCreditInput,
    LoanProjection,
    RecordCreditEventInput,
    RegisterActivities,
)
from domain.classification import CreditStanding, ScoreEvent
from domain.loan import Bucket, GuaranteeType, LoanClass, Purpose, RepaymentMethod, Stage
from domain.policy import Policy
from domain.schedule import build_schedule
from domain.servicing import AccountAsOf, open_book
from store.db import SessionFactory
from store.models import (
    BlacklistEntry,
    CreditEventRecord,
    CreditStandingRecord,
    LoanAccountRecord,
    LoanRecord,
)

# The rulebook defaults (F-2: overdue 30-90 days -15, over 90 days -50, ...).
POLICY = Policy(
    version="test", effective_from=date(2026, 1, 1), institution="示范县农村信用合作联社"
)
ON = date(2026, 6, 15)
env = ActivityEnvironment()


@pytest.fixture
def register(sessions: SessionFactory) -> RegisterActivities:
    return RegisterActivities(sessions)


def projection(loan_id: str, revision: int = 1, **changes: Any) -> LoanProjection:
    fields: dict[str, Any] = {
        "loan_id": loan_id,
        "revision": revision,
        "stage": Stage.REPAYING,
        "branch_code": "C01",
        "prefecture_code": "P01",
        "officer_username": "officer.a",
        "applicant_name": "张三",
        "id_number_masked": "4101**********0030",
        "phone_masked": "138****5678",
        "household_id": "HH-001",
        "village": "李家村",
        "purpose": Purpose.LIVESTOCK,
        "guarantee_type": GuaranteeType.CREDIT,
        "repayment_method": RepaymentMethod.EQUAL_INSTALLMENT,
        "amount_requested": Decimal("30000.00"),
        "amount_approved": Decimal("30000.00"),
        "term_months": 12,
        "annual_rate": Decimal("0.0720"),
        "policy_version": "2026.1",
        "applied_at": datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        "decision_due": date(2026, 3, 11),
        "sla_breached": False,
        "decided_at": datetime(2026, 3, 9, 9, 30, tzinfo=UTC),
        "disbursed_at": datetime(2026, 3, 20, 9, 30, tzinfo=UTC),
        "maturity_date": date(2027, 3, 20),
        "outcome_reasons": [],
        "open_tasks": [],
    }
    fields.update(changes)
    return LoanProjection(**fields)


def loan_row(sessions: SessionFactory, loan_id: str) -> LoanRecord:
    with sessions() as s:
        row = s.get(LoanRecord, loan_id)
    assert row is not None
    return row


def as_utc(ts: datetime | None) -> datetime | None:
    # SQLite reads timestamps back without their offset; they were stored as UTC.
    if ts is None or ts.tzinfo is not None:
        return ts
    return ts.replace(tzinfo=UTC)


def credit_event(
    register: RegisterActivities,
    key: str,
    event: ScoreEvent = ScoreEvent.OVERDUE_30_TO_90,
    household_id: str = "HH-001",
    initial_score: int = 80,
    occurred_on: date = ON,
) -> CreditStanding:
    return env.run(
        register.record_credit_event,
        RecordCreditEventInput(
            idempotency_key=key,
            household_id=household_id,
            loan_id="L1",
            event=event,
            occurred_on=occurred_on,
            initial_score=initial_score,
            policy=POLICY,
        ),
    )


def events_of(sessions: SessionFactory, household_id: str) -> list[tuple[str, str, int, int]]:
    with sessions() as s:
        rows = s.exec(
            select(CreditEventRecord)
            .where(CreditEventRecord.household_id == household_id)
            .order_by(col(CreditEventRecord.score_before).desc())
        ).all()
    return [(r.idempotency_key, r.event, r.score_before, r.score_after) for r in rows]


def stored_score(sessions: SessionFactory, household_id: str) -> int | None:
    with sessions() as s:
        row = s.get(CreditStandingRecord, household_id)
    return None if row is None else row.score


def credit(register: RegisterActivities, household_id: str) -> HouseholdCredit:
    return env.run(register.household_credit, HouseholdCreditInput(household_id=household_id))


def blacklist(register: RegisterActivities, household_id: str, reason: str, by: str) -> None:
    env.run(
        register.blacklist_household,
        BlacklistHouseholdInput(
            household_id=household_id, loan_id="L1", reason=reason, listed_by=by
        ),
    )


# ---------------------------------------------------------------- project_loan (F-1, D-4)


def test_projection_writes_the_post_loan_columns(
    register: RegisterActivities, sessions: SessionFactory
) -> None:
    env.run(register.project_loan, projection("L1"))
    row = loan_row(sessions, "L1")
    assert (row.loan_class, row.bucket, row.days_past_due) == (None, None, 0)
    assert (row.principal_outstanding_fen, row.arrears_fen) == (None, None)
    assert (row.next_due_date, row.closed_at) == (None, None)

    env.run(
        register.project_loan,
        projection(
            "L1",
            revision=2,
            loan_class=LoanClass.SPECIAL_MENTION,
            bucket=Bucket.M2,
            days_past_due=45,
            principal_outstanding=Decimal("22500.50"),
            arrears=Decimal("2612.34"),
            next_due_date=date(2026, 7, 20),
        ),
    )
    row = loan_row(sessions, "L1")
    assert (row.loan_class, row.bucket, row.days_past_due) == ("special_mention", "M2", 45)
    assert (row.principal_outstanding_fen, row.arrears_fen) == (2_250_050, 261_234)
    assert row.next_due_date == date(2026, 7, 20)
    assert row.closed_at is None

    china = timezone(timedelta(hours=8))
    env.run(
        register.project_loan,
        projection(
            "L1",
            revision=3,
            stage=Stage.CLOSED,
            loan_class=LoanClass.NORMAL,
            bucket=Bucket.CURRENT,
            principal_outstanding=Decimal("0"),
            arrears=Decimal("0"),
            closed_at=datetime(2027, 3, 20, 16, 0, tzinfo=china),
        ),
    )
    row = loan_row(sessions, "L1")
    assert (row.stage, row.loan_class, row.bucket, row.days_past_due) == (
        "closed",
        "normal",
        "current",
        0,
    )
    assert (row.principal_outstanding_fen, row.arrears_fen, row.next_due_date) == (0, 0, None)
    assert as_utc(row.closed_at) == datetime(2027, 3, 20, 8, 0, tzinfo=UTC)


def test_older_revision_leaves_the_post_loan_columns(
    register: RegisterActivities, sessions: SessionFactory
) -> None:
    env.run(
        register.project_loan,
        projection(
            "L1",
            revision=5,
            loan_class=LoanClass.SUBSTANDARD,
            bucket=Bucket.M3_PLUS,
            days_past_due=95,
            arrears=Decimal("5000.00"),
        ),
    )
    # A late retry of an earlier snapshot (still current, nothing owed) changes nothing.
    env.run(
        register.project_loan,
        projection("L1", revision=4, loan_class=LoanClass.NORMAL, bucket=Bucket.CURRENT),
    )
    row = loan_row(sessions, "L1")
    assert (row.revision, row.loan_class, row.bucket, row.days_past_due, row.arrears_fen) == (
        5,
        "substandard",
        "M3+",
        95,
        500_000,
    )


def test_projection_keeps_the_account_beside_the_row(
    register: RegisterActivities, sessions: SessionFactory
) -> None:
    """The account readers bring to today (当日口径) follows the row's revision check."""
    rate = Decimal("0.0720")
    schedule = build_schedule(Decimal("30000.00"), rate, 12, RepaymentMethod.EQUAL_INSTALLMENT, ON)
    opened = AccountAsOf(
        as_of=ON, book=open_book(schedule, Decimal("30000.00"), ON), annual_rate=rate, policy=POLICY
    )
    judged = opened.model_copy(
        update={"as_of": ON + timedelta(days=3), "judged_class": LoanClass.DOUBTFUL}
    )

    def stored() -> AccountAsOf:
        with sessions() as s:
            row = s.get(LoanAccountRecord, "L1")
        assert row is not None
        account = AccountAsOf.model_validate(row.account)
        assert row.as_of == account.as_of
        return account

    env.run(register.project_loan, projection("L1", revision=2, account=opened))
    assert stored() == opened
    env.run(register.project_loan, projection("L1", revision=3, account=judged))
    assert stored() == judged
    # A late retry of an older snapshot, and a projection without an account, keep it.
    env.run(register.project_loan, projection("L1", revision=1, account=opened))
    env.run(register.project_loan, projection("L1", revision=4))
    assert stored() == judged


def test_old_projection_payload_still_decodes() -> None:
    new_fields = {
        "loan_class",
        "bucket",
        "days_past_due",
        "principal_outstanding",
        "arrears",
        "next_due_date",
        "closed_at",
    }
    payload = projection("L1", stage=Stage.DISBURSED).model_dump(mode="json")
    old = {k: v for k, v in payload.items() if k not in new_fields}
    assert set(payload) - set(old) == new_fields

    decoded = LoanProjection.model_validate(old)
    assert decoded == projection("L1", stage=Stage.DISBURSED)
    assert (decoded.loan_class, decoded.bucket, decoded.days_past_due) == (None, None, 0)
    assert (decoded.principal_outstanding, decoded.arrears) == (None, None)
    assert (decoded.next_due_date, decoded.closed_at) == (None, None)


# ---------------------------------------------------------------- record_credit_event (F-2)


def test_first_event_starts_from_the_rating_score(
    register: RegisterActivities, sessions: SessionFactory
) -> None:
    assert stored_score(sessions, "HH-001") is None
    standing = credit_event(register, "L1/F-2/overdue_30_to_90", initial_score=80)
    assert standing == CreditStanding(score=65)  # 80 - 15 (policy)
    assert stored_score(sessions, "HH-001") == 65
    assert events_of(sessions, "HH-001") == [
        ("L1/F-2/overdue_30_to_90", "overdue_30_to_90", 80, 65)
    ]


def test_same_key_lowers_once(register: RegisterActivities, sessions: SessionFactory) -> None:
    first = credit_event(register, "L1/F-2/overdue_30_to_90")
    # A retry returns the stored standing; a different initial score does not matter now.
    again = credit_event(register, "L1/F-2/overdue_30_to_90", initial_score=100)
    assert first == again == CreditStanding(score=65)
    assert stored_score(sessions, "HH-001") == 65
    assert len(events_of(sessions, "HH-001")) == 1


def test_events_accumulate_and_stop_at_zero(
    register: RegisterActivities, sessions: SessionFactory
) -> None:
    credit_event(register, "L1/F-2/overdue_30_to_90", ScoreEvent.OVERDUE_30_TO_90)
    standing = credit_event(register, "L1/F-2/overdue_over_90", ScoreEvent.OVERDUE_OVER_90)
    assert standing.score == 15  # 80 - 15 - 50
    standing = credit_event(register, "L1/F-2/doubtful_or_loss", ScoreEvent.DOUBTFUL_OR_LOSS)
    assert standing.score == 0  # 15 - 60, never below 0
    assert stored_score(sessions, "HH-001") == 0
    assert events_of(sessions, "HH-001") == [
        ("L1/F-2/overdue_30_to_90", "overdue_30_to_90", 80, 65),
        ("L1/F-2/overdue_over_90", "overdue_over_90", 65, 15),
        ("L1/F-2/doubtful_or_loss", "doubtful_or_loss", 15, 0),
    ]
    # Other households are untouched.
    assert (
        credit_event(register, "L2/F-2/purpose", ScoreEvent.PURPOSE_CHANGED, "HH-002").score == 65
    )


def test_restrictions_are_stored(register: RegisterActivities, sessions: SessionFactory) -> None:
    standing = credit_event(register, "L1/F-2/third_party", ScoreEvent.FUNDS_TO_THIRD_PARTY)
    assert standing == CreditStanding(score=50, no_upgrade_until=date(2028, 6, 15))
    standing = credit_event(register, "L1/F-2/crime", ScoreEvent.CRIME)
    assert standing == CreditStanding(
        score=39,  # grade C: one under the lowest floor
        grade_floor_c_until=date(2031, 6, 15),
        no_upgrade_until=date(2028, 6, 15),
        no_grading_until=date(2031, 6, 15),
    )
    with sessions() as s:
        row = s.get(CreditStandingRecord, "HH-001")
    assert row is not None
    assert (row.score, row.grade_floor_c_until, row.no_upgrade_until, row.no_grading_until) == (
        39,
        date(2031, 6, 15),
        date(2028, 6, 15),
        date(2031, 6, 15),
    )


def test_concurrent_retries_lower_once(
    register: RegisterActivities, sessions: SessionFactory
) -> None:
    barrier = threading.Barrier(4)

    def attempt(_: int) -> CreditStanding:
        barrier.wait()
        return credit_event(register, "L1/F-2/overdue_30_to_90")

    with ThreadPoolExecutor(4) as pool:
        standings = list(pool.map(attempt, range(4)))
    assert standings == [CreditStanding(score=65)] * 4
    assert stored_score(sessions, "HH-001") == 65
    assert len(events_of(sessions, "HH-001")) == 1


@pytest.mark.parametrize("existing", [False, True], ids=["new-household", "scored-household"])
def test_concurrent_events_are_not_lost(
    register: RegisterActivities, sessions: SessionFactory, existing: bool
) -> None:
    if existing:
        credit_event(register, "L0/F-2/purpose", ScoreEvent.PURPOSE_CHANGED, initial_score=95)
    events = [ScoreEvent.OVERDUE_30_TO_90, ScoreEvent.PURPOSE_CHANGED, ScoreEvent.OVERDUE_OVER_90]
    barrier = threading.Barrier(len(events))

    def attempt(event: ScoreEvent) -> CreditStanding:
        barrier.wait()
        return credit_event(register, f"L1/F-2/{event}", event, initial_score=95)

    with ThreadPoolExecutor(len(events)) as pool:
        list(pool.map(attempt, events))
    # 95 (- 15 before) - 15 - 15 - 50, whatever the order
    assert stored_score(sessions, "HH-001") == (0 if existing else 15)
    assert len(events_of(sessions, "HH-001")) == len(events) + existing


# ---------------------------------------------------------------- blacklist (D-5)


def test_blacklist_is_idempotent(register: RegisterActivities, sessions: SessionFactory) -> None:
    blacklist(register, "HH-001", "恶意逃废债，电话13812345678拒接", "head.c01")
    blacklist(register, "HH-001", "second listing", "head.p01")  # the first listing stands
    with sessions() as s:
        rows = s.exec(select(BlacklistEntry)).all()
    assert [(r.household_id, r.loan_id, r.listed_by) for r in rows] == [
        ("HH-001", "L1", "head.c01")
    ]
    assert "13812345678" not in rows[0].reason  # a list: phone numbers masked (H-3)
    assert rows[0].reason.startswith("恶意逃废债")


def test_concurrent_blacklisting_lists_once(
    register: RegisterActivities, sessions: SessionFactory
) -> None:
    barrier = threading.Barrier(4)

    def attempt(n: int) -> None:
        barrier.wait()
        blacklist(register, "HH-001", f"wilful default {n}", "head.c01")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(attempt, range(4)))
    with sessions() as s:
        assert len(s.exec(select(BlacklistEntry)).all()) == 1


# ---------------------------------------------------------------- household_credit (E-4, E-6)


def test_household_credit_unknown_household(register: RegisterActivities) -> None:
    assert credit(register, "HH-404") == HouseholdCredit(
        score=None,
        grade_floor_c_until=None,
        no_upgrade_until=None,
        no_grading_until=None,
        blacklisted=False,
        blacklist_reason=None,
    )


def test_household_credit_scored_and_blacklisted(register: RegisterActivities) -> None:
    credit_event(register, "L1/F-2/third_party", ScoreEvent.FUNDS_TO_THIRD_PARTY)
    assert credit(register, "HH-001") == HouseholdCredit(
        score=50, no_upgrade_until=date(2028, 6, 15), blacklisted=False
    )

    blacklist(register, "HH-002", "恶意逃废债", "head.c01")
    assert credit(register, "HH-002") == HouseholdCredit(
        score=None, blacklisted=True, blacklist_reason="恶意逃废债"
    )

    blacklist(register, "HH-001", "挪用贷款且拒不归还", "head.c01")
    both = credit(register, "HH-001")
    assert (both.score, both.no_upgrade_until) == (50, date(2028, 6, 15))
    assert (both.blacklisted, both.blacklist_reason) == (True, "挪用贷款且拒不归还")
