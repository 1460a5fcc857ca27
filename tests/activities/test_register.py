"""The register activities: household locks (E-7, E-12), splitting (E-15), loan register, tasks."""

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
    ClaimHouseholdInput,
    LateTaskRecipientsInput,
    LoanProjection,
    RegisterActivities,
    ReleaseHouseholdInput,
    StoreScheduleInput,
    TaskSpec,
)
from domain.errors import Refusal
from domain.loan import (
    GuaranteeType,
    HouseholdStanding,
    Installment,
    Purpose,
    RepaymentMethod,
    Role,
    Stage,
)
from store.db import SessionFactory
from store.models import (
    Branch,
    GroupMembership,
    HouseholdClaim,
    LoanRecord,
    ScheduledInstallment,
    StaffUser,
    Task,
)

APPLIED_ON = date(2026, 3, 2)
env = ActivityEnvironment()


@pytest.fixture
def register(sessions: SessionFactory) -> RegisterActivities:
    return RegisterActivities(sessions)


def claim(
    register: RegisterActivities,
    loan_id: str,
    household_id: str = "HH-001",
    group: list[str] | None = None,
    applied_on: date = APPLIED_ON,
) -> HouseholdStanding:
    return env.run(
        register.claim_household,
        ClaimHouseholdInput(
            loan_id=loan_id,
            household_id=household_id,
            group_household_ids=group or [],
            applied_on=applied_on,
            split_window_days=90,
        ),
    )


def projection(loan_id: str, revision: int = 1, **changes: Any) -> LoanProjection:
    fields: dict[str, Any] = {
        "loan_id": loan_id,
        "revision": revision,
        "stage": Stage.INVESTIGATION,
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
        "amount_approved": None,
        "term_months": 24,
        "annual_rate": None,
        "policy_version": "2026.1",
        "applied_at": datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        "decision_due": date(2026, 3, 11),
        "sla_breached": False,
        "decided_at": None,
        "disbursed_at": None,
        "maturity_date": None,
        "outcome_reasons": [],
        "open_tasks": [],
    }
    fields.update(changes)
    return LoanProjection(**fields)


def project(register: RegisterActivities, inp: LoanProjection) -> None:
    env.run(register.project_loan, inp)


def loan_row(sessions: SessionFactory, loan_id: str) -> LoanRecord:
    with sessions() as s:
        row = s.get(LoanRecord, loan_id)
    assert row is not None
    return row


def tasks_of(sessions: SessionFactory, loan_id: str) -> dict[str, Task]:
    with sessions() as s:
        return {t.task_key: t for t in s.exec(select(Task).where(Task.loan_id == loan_id)).all()}


def task(key: str, role: Role = Role.LOAN_OFFICER, **changes: Any) -> TaskSpec:
    return TaskSpec(
        task_key=key, kind=key.rsplit("/", 1)[-1], role=role, branch_code="C01", **changes
    )


# ---------------------------------------------------------------- E-7 / E-12


def test_claim_and_conflict_e7(register: RegisterActivities, sessions: SessionFactory) -> None:
    first = claim(register, "L1")
    assert first == HouseholdStanding()
    assert claim(register, "L1") == first  # a retry claims nothing new
    other = claim(register, "L2")
    assert other.claimed_by_other_loan == "L1"
    with sessions() as s:
        assert [(c.household_id, c.loan_id) for c in s.exec(select(HouseholdClaim)).all()] == [
            ("HH-001", "L1")
        ]


def test_release_only_by_the_holder(register: RegisterActivities) -> None:
    claim(register, "L1", group=["HH-101", "HH-102"])
    env.run(register.release_household, ReleaseHouseholdInput(loan_id="L2", household_id="HH-001"))
    assert claim(register, "L3").claimed_by_other_loan == "L1"
    assert claim(register, "L3", household_id="HH-009", group=["HH-101"]).group_conflicts == [
        "HH-101"
    ]
    env.run(register.release_household, ReleaseHouseholdInput(loan_id="L1", household_id="HH-001"))
    env.run(register.release_household, ReleaseHouseholdInput(loan_id="L1", household_id="HH-001"))
    assert claim(register, "L3").claimed_by_other_loan is None
    assert claim(register, "L4", household_id="HH-010", group=["HH-101"]).group_conflicts == []


def test_group_conflict_e12(register: RegisterActivities, sessions: SessionFactory) -> None:
    first = claim(register, "L1", group=["HH-101", "HH-102", "HH-103"])
    assert first.group_conflicts == []
    assert claim(register, "L1", group=["HH-101", "HH-102", "HH-103"]).group_conflicts == []
    second = claim(register, "L2", household_id="HH-002", group=["HH-103", "HH-104", "HH-102"])
    assert second.group_conflicts == ["HH-102", "HH-103"]
    assert second.claimed_by_other_loan is None
    with sessions() as s:
        held = {m.household_id: m.loan_id for m in s.exec(select(GroupMembership)).all()}
        claims = {c.household_id: c.loan_id for c in s.exec(select(HouseholdClaim)).all()}
    assert held == {"HH-101": "L1", "HH-102": "L1", "HH-103": "L1"}  # HH-104 not taken
    assert claims == {"HH-001": "L1", "HH-002": "L2"}


def test_e7_conflict_takes_no_group(register: RegisterActivities, sessions: SessionFactory) -> None:
    claim(register, "L1")
    assert claim(register, "L2", group=["HH-201", "HH-202"]).claimed_by_other_loan == "L1"
    with sessions() as s:
        assert s.exec(select(GroupMembership)).all() == []


def test_concurrent_claims_one_winner(register: RegisterActivities) -> None:
    barrier = threading.Barrier(6)

    def attempt(n: int) -> HouseholdStanding:
        barrier.wait()
        return claim(register, f"L{n}", group=["HH-301", "HH-302"])

    with ThreadPoolExecutor(6) as pool:
        standings = list(pool.map(attempt, range(6)))
    winners = [s for s in standings if s.claimed_by_other_loan is None]
    assert len(winners) == 1
    assert {s.claimed_by_other_loan for s in standings} - {None} == {
        f"L{standings.index(winners[0])}"
    }


# ---------------------------------------------------------------- E-15 / A-4


def test_recent_amounts_e15_and_returning_customer(register: RegisterActivities) -> None:
    def at(days_before: int) -> datetime:
        return datetime(2026, 3, 2, 10, tzinfo=UTC) - timedelta(days=days_before)

    for loan_id, days_before, stage, amount in [
        ("A-in", 10, Stage.REVIEW, "20000.00"),
        ("A-edge", 90, Stage.APPLIED, "5000.00"),
        ("A-out", 91, Stage.APPROVAL, "7000.00"),
        ("A-refused", 5, Stage.REFUSED, "9000.00"),
        ("A-rejected", 6, Stage.REJECTED, "9100.00"),
        ("A-withdrawn", 7, Stage.WITHDRAWN, "9200.00"),
        ("A-lapsed", 8, Stage.LAPSED, "9300.00"),
    ]:
        project(
            register,
            projection(
                loan_id, stage=stage, applied_at=at(days_before), amount_requested=Decimal(amount)
            ),
        )
    project(register, projection("B-other-household", household_id="HH-999"))
    project(register, projection("NEW", applied_at=at(0)))  # the applying loan itself

    standing = claim(register, "NEW")
    # withdrawn and lapsed applications count, refused and rejected ones do not
    assert standing.recent_amounts == [  # oldest first
        Decimal("5000.00"),
        Decimal("20000.00"),
        Decimal("9300.00"),
        Decimal("9200.00"),
    ]
    assert not standing.returning_customer

    project(
        register,
        projection(
            "A-out", revision=2, stage=Stage.DISBURSED, applied_at=at(91), disbursed_at=at(60)
        ),
    )
    assert claim(register, "NEW").returning_customer
    assert claim(register, "X", household_id="HH-999").returning_customer is False


# ---------------------------------------------------------------- project_loan


def test_projection_writes_the_row(register: RegisterActivities, sessions: SessionFactory) -> None:
    reasons = [Refusal(rule="E-9", message="amount above half the household income")]
    china = timezone(timedelta(hours=8))
    project(
        register,
        projection(
            "L1",
            stage=Stage.REFUSED,
            amount_approved=Decimal("25000.50"),
            annual_rate=Decimal("0.0435"),
            decided_at=datetime(2026, 3, 5, 16, 0, tzinfo=china),
            outcome_reasons=reasons,
        ),
    )
    row = loan_row(sessions, "L1")
    assert row.stage == "refused" and row.purpose == "livestock"
    assert row.amount_requested_fen == 3_000_000
    assert row.amount_approved_fen == 2_500_050
    assert row.annual_rate == "0.0435"
    assert row.outcome_reasons == [r.model_dump(mode="json") for r in reasons]
    assert row.decided_at is not None
    decided = row.decided_at if row.decided_at.tzinfo else row.decided_at.replace(tzinfo=UTC)
    assert decided == datetime(2026, 3, 5, 8, 0, tzinfo=UTC)


def test_older_revision_is_ignored(register: RegisterActivities, sessions: SessionFactory) -> None:
    project(register, projection("L1", revision=1, open_tasks=[task("L1/investigate")]))
    project(
        register, projection("L1", revision=3, stage=Stage.REVIEW, open_tasks=[task("L1/review")])
    )
    # A late retry of revision 2 changes nothing: neither the row nor the tasks.
    project(register, projection("L1", revision=2, stage=Stage.APPLIED, open_tasks=[task("L1/x")]))
    project(register, projection("L1", revision=3, stage=Stage.APPLIED, open_tasks=[]))
    row = loan_row(sessions, "L1")
    assert (row.revision, row.stage) == (3, "review")
    tasks = tasks_of(sessions, "L1")
    assert {k: t.status for k, t in tasks.items()} == {
        "L1/investigate": "done",
        "L1/review": "open",
    }


def test_tasks_reconciled_and_never_reopened(
    register: RegisterActivities, sessions: SessionFactory
) -> None:
    inv1, inv2 = task("L1/investigate/1"), task("L1/investigate/2")
    project(register, projection("L1", revision=1, open_tasks=[inv1, inv2]))
    project(register, projection("L1", revision=1, open_tasks=[inv1, inv2]))  # retry
    tasks = tasks_of(sessions, "L1")
    assert {k: t.status for k, t in tasks.items()} == {
        k: "open" for k in (inv1.task_key, inv2.task_key)
    }

    project(register, projection("L1", revision=2, open_tasks=[inv2]))
    tasks = tasks_of(sessions, "L1")
    assert tasks[inv1.task_key].status == "done" and tasks[inv1.task_key].closed_at is not None
    assert tasks[inv2.task_key].status == "open" and tasks[inv2.task_key].closed_at is None

    review = task("L1/review", Role.REVIEWER, due_date=date(2026, 3, 9))
    project(register, projection("L1", revision=3, open_tasks=[inv1, review]))
    tasks = tasks_of(sessions, "L1")
    assert {k: t.status for k, t in tasks.items()} == {
        inv1.task_key: "done",  # never reopened
        inv2.task_key: "done",
        review.task_key: "open",
    }
    assert tasks[review.task_key].due_date == date(2026, 3, 9)
    assert tasks[review.task_key].role == "reviewer"

    # An extension moves the open task's deadline.
    moved = review.model_copy(update={"due_date": date(2026, 3, 12)})
    project(register, projection("L1", revision=4, open_tasks=[moved]))
    assert tasks_of(sessions, "L1")[review.task_key].due_date == date(2026, 3, 12)

    project(register, projection("L1", revision=5, stage=Stage.REJECTED, open_tasks=[]))
    assert {t.status for t in tasks_of(sessions, "L1").values()} == {"done"}


def test_tasks_of_other_loans_untouched(
    register: RegisterActivities, sessions: SessionFactory
) -> None:
    project(register, projection("L1", open_tasks=[task("L1/investigate")]))
    project(register, projection("L2", household_id="HH-002", open_tasks=[task("L2/investigate")]))
    project(register, projection("L1", revision=2, open_tasks=[]))
    assert tasks_of(sessions, "L2")["L2/investigate"].status == "open"


# ---------------------------------------------------------------- store_schedule


def installments(amount: str, n: int) -> list[Installment]:
    each = Decimal(amount) / n
    return [
        Installment(
            number=i,
            due_date=date(2026, 3 + i, 21),
            principal=each,
            interest=Decimal("12.34"),
            payment=each + Decimal("12.34"),
            remaining_principal=Decimal(amount) - each * i,
            days=30,
        )
        for i in range(1, n + 1)
    ]


def test_store_schedule_is_idempotent(
    register: RegisterActivities, sessions: SessionFactory
) -> None:
    first = StoreScheduleInput(loan_id="L1", installments=installments("3000.00", 3))
    for _ in range(2):
        env.run(register.store_schedule, first)
    env.run(
        register.store_schedule,
        StoreScheduleInput(loan_id="L2", installments=installments("100.00", 2)),
    )

    def stored(loan_id: str) -> list[tuple[int, int, int]]:
        with sessions() as s:
            rows = s.exec(
                select(ScheduledInstallment)
                .where(ScheduledInstallment.loan_id == loan_id)
                .order_by(col(ScheduledInstallment.number))
            ).all()
        return [(r.number, r.principal_fen, r.remaining_principal_fen) for r in rows]

    assert stored("L1") == [(1, 100_000, 200_000), (2, 100_000, 100_000), (3, 100_000, 0)]
    env.run(
        register.store_schedule,
        StoreScheduleInput(loan_id="L1", installments=installments("2000.00", 2)),
    )
    assert stored("L1") == [(1, 100_000, 100_000), (2, 100_000, 0)]
    assert len(stored("L2")) == 2


# ---------------------------------------------------------------- late_task_recipients


def seed_staff(sessions: SessionFactory) -> None:
    with sessions() as s:
        s.add(Branch(code="P01", name="示范市分行", tier="prefecture"))
        s.add(Branch(code="C01", name="示范县支行", tier="county", parent_code="P01"))
        s.add(Branch(code="C02", name="邻县支行", tier="county", parent_code="P01"))
        s.commit()
        for username, role, branch, limit, active in [
            ("officer.a", "loan_officer", "C01", None, True),
            ("officer.b", "loan_officer", "C01", None, True),
            ("officer.c", "loan_officer", "C02", None, True),
            ("reviewer.a", "reviewer", "C01", None, True),
            ("approver.small", "approver", "C01", 2_000_000, True),
            ("approver.big", "approver", "C01", 5_000_000, True),
            ("approver.gone", "approver", "C01", 9_000_000, False),
            ("head.c01", "branch_head", "C01", None, True),
            ("head.old", "branch_head", "C01", None, False),
            ("head.c02", "branch_head", "C02", None, True),
            ("head.p01", "branch_head", "P01", None, True),
        ]:
            s.add(
                StaffUser(
                    username=username,
                    full_name=username,
                    password_hash="x",
                    role=role,
                    branch_code=branch,
                    approval_limit_fen=limit,
                    active=active,
                )
            )
        s.commit()


def recipients(register: RegisterActivities, loan_id: str) -> list[str]:
    return env.run(register.late_task_recipients, LateTaskRecipientsInput(loan_id=loan_id))


def test_late_task_recipients_a4(register: RegisterActivities, sessions: SessionFactory) -> None:
    seed_staff(sessions)
    project(
        register,
        projection(
            "L1",
            open_tasks=[
                task("L1/investigate", excluded_usernames=["officer.b"]),
                task("L1/approve", Role.APPROVER, min_approval_limit=Decimal("30000.00")),
            ],
        ),
    )
    assert recipients(register, "L1") == ["approver.big", "head.c01", "officer.a"]

    with sessions() as s:
        claimed = s.exec(select(Task).where(Task.task_key == "L1/approve")).one()
        claimed.claimed_by = "approver.small"
        s.add(claimed)
        s.commit()
    assert recipients(register, "L1") == ["approver.small", "head.c01", "officer.a"]

    project(register, projection("L1", revision=2, open_tasks=[]))
    assert recipients(register, "L1") == ["head.c01"]
    assert recipients(register, "unknown") == []

    # a late task at the prefecture reminds its owners there and the head there too
    pref_review = task("L1/prefecture-review", Role.REVIEWER).model_copy(
        update={"branch_code": "P01"}
    )
    project(register, projection("L1", revision=3, open_tasks=[pref_review]))
    assert recipients(register, "L1") == ["head.c01", "head.p01"]
