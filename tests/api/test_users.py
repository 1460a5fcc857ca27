"""The users service on both databases: seeding, sign-in, actors, branch hierarchy."""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import func, select

from api.security import hash_password, verify_password
from api.services.users import (
    DEV_PASSWORD,
    actor_for,
    authenticate,
    branch_prefecture,
    get_active_user,
    seed_development_data,
)
from domain.loan import Role, Tier
from store.db import SessionFactory
from store.models import Branch, StaffUser


def _counts(sessions: SessionFactory) -> tuple[int, int]:
    with sessions() as session:
        branches = session.exec(select(func.count()).select_from(Branch)).one()
        users = session.exec(select(func.count()).select_from(StaffUser)).one()
    return branches, users


def test_seeding_is_idempotent(sessions: SessionFactory) -> None:
    with sessions() as session:
        first = seed_development_data(session)
    with sessions() as session:
        officer = get_active_user(session, "officer1")
        assert officer is not None
        officer.full_name = "王建国 (renamed)"
        session.add(officer)
        session.commit()

    with sessions() as session:
        second = seed_development_data(session)

    assert first == second
    assert _counts(sessions) == (3, 13)
    with sessions() as session:
        assert get_active_user(session, "officer1").full_name == "王建国 (renamed)"  # type: ignore[union-attr]


def test_seed_accounts(sessions: SessionFactory) -> None:
    with sessions() as session:
        seeded = {user.username: user for user in seed_development_data(session)}

    assert seeded["pref_approver"].tier is Tier.PREFECTURE
    assert seeded["pref_approver"].limit == Decimal("200000")
    assert seeded["approver2"].limit == Decimal("20000")
    assert all(user.password == DEV_PASSWORD for user in seeded.values())
    with sessions() as session:
        officer2 = get_active_user(session, "officer2")
        assert officer2 is not None and officer2.household_id == "HH-STAFF-0002"


def test_authenticate(sessions: SessionFactory) -> None:
    with sessions() as session:
        seed_development_data(session)
        assert authenticate(session, "reviewer1", DEV_PASSWORD) is not None
        assert authenticate(session, "reviewer1", "wrong") is None
        assert authenticate(session, "nobody", DEV_PASSWORD) is None


def test_actor_for_an_approver(sessions: SessionFactory) -> None:
    with sessions() as session:
        seed_development_data(session)
        actor = actor_for(get_active_user(session, "approver1"))  # type: ignore[arg-type]
        officer = actor_for(get_active_user(session, "officer2"))  # type: ignore[arg-type]

    assert actor.role is Role.APPROVER
    assert (actor.branch, actor.tier, actor.approval_limit) == (
        "CB01",
        Tier.COUNTY,
        Decimal("50000"),
    )
    assert (officer.tier, officer.approval_limit, officer.household_id) == (
        None,
        None,
        "HH-STAFF-0002",
    )


def test_branch_prefecture(sessions: SessionFactory) -> None:
    with sessions() as session:
        seed_development_data(session)
        assert branch_prefecture(session, "CB01") == "PF01"
        assert branch_prefecture(session, "CB02") == "PF01"
        assert branch_prefecture(session, "PF01") == "PF01"
        assert branch_prefecture(session, "XX99") is None


def test_password_hashing() -> None:
    hashed = hash_password("s3cret")

    assert hashed.startswith("$argon2")
    assert verify_password("s3cret", hashed)
    assert not verify_password("other", hashed)
    assert not verify_password("s3cret", "not-a-hash")
