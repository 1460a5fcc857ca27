"""Staff accounts: sign-in, the acting identity, and the development seed."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import NamedTuple

from sqlmodel import Session, select

from api.security import hash_password, verify_password
from domain.loan import Actor, Role, Tier
from domain.money import from_fen, to_fen
from store.models import Branch, StaffUser

DEV_PASSWORD = "loanflow-dev"  # development and tests only; seeded accounts share it


@cache
def _dummy_hash() -> str:
    return hash_password("not-a-real-password")


def get_active_user(session: Session, username: str) -> StaffUser | None:
    user = session.exec(select(StaffUser).where(StaffUser.username == username)).first()
    return user if user is not None and user.active else None


def authenticate(session: Session, username: str, password: str) -> StaffUser | None:
    """The active user with this password, or None without saying which part was wrong."""
    user = session.exec(select(StaffUser).where(StaffUser.username == username)).first()
    if user is None:
        # Spend the same hashing time as for a real user, so timing does not reveal names.
        verify_password(password, _dummy_hash())
        return None
    if not verify_password(password, user.password_hash) or not user.active:
        return None
    return user


def actor_for(user: StaffUser) -> Actor:
    return Actor(
        username=user.username,
        name=user.full_name,
        role=Role(user.role),
        branch=user.branch_code,
        tier=Tier(user.tier) if user.tier else None,
        approval_limit=from_fen(user.approval_limit_fen)
        if user.approval_limit_fen is not None
        else None,
        household_id=user.household_id,
    )


def branch_prefecture(session: Session, branch_code: str) -> str | None:
    """The prefecture branch a branch reports to: a county branch's parent, or itself."""
    branch = session.get(Branch, branch_code)
    if branch is None:
        return None
    if branch.tier == Tier.PREFECTURE:
        return branch.code
    return branch.parent_code


class SeededUser(NamedTuple):
    username: str
    password: str
    full_name: str
    role: Role
    branch: str
    tier: Tier | None
    limit: Decimal | None


# (code, name, tier, parent), parents first
SEED_BRANCHES = (
    ("PF01", "示范市二级分行", Tier.PREFECTURE, None),
    ("CB01", "示范县支行", Tier.COUNTY, "PF01"),
    ("CB02", "东山县支行", Tier.COUNTY, "PF01"),
)


def _seed(
    username: str,
    full_name: str,
    role: Role,
    branch: str,
    tier: Tier | None = None,
    limit: str | None = None,
) -> SeededUser:
    return SeededUser(
        username, DEV_PASSWORD, full_name, role, branch, tier, Decimal(limit) if limit else None
    )


SEED_USERS = (
    _seed("officer1", "王建国", Role.LOAN_OFFICER, "CB01"),
    _seed("officer2", "李秀英", Role.LOAN_OFFICER, "CB01"),
    _seed("officer3", "赵磊", Role.LOAN_OFFICER, "CB02"),
    _seed("reviewer1", "张敏", Role.REVIEWER, "CB01"),
    _seed("approver1", "陈立", Role.APPROVER, "CB01", Tier.COUNTY, "50000"),
    _seed("approver2", "刘洋", Role.APPROVER, "CB01", Tier.COUNTY, "20000"),
    _seed("head1", "周强", Role.BRANCH_HEAD, "CB01"),
    _seed("pref_reviewer", "吴静", Role.REVIEWER, "PF01"),
    _seed("pref_approver", "孙伟", Role.APPROVER, "PF01", Tier.PREFECTURE, "200000"),
    _seed("manager1", "黄磊", Role.POST_LOAN_MANAGER, "CB01"),
    _seed("teller1", "马丽", Role.TELLER, "CB01"),
    _seed("auditor1", "郑洁", Role.AUDITOR, "PF01"),
    _seed("admin", "管理员", Role.ADMIN, "PF01"),
)
# officer2 belongs to a borrowing household, so rule A-1 (no approving one's own
# household) can be exercised.
SEED_HOUSEHOLDS = {"officer2": "HH-STAFF-0002"}


def seed_development_data(session: Session) -> list[SeededUser]:
    """Create the development branches and accounts that are missing; commits.

    Existing rows are left as they are. Returns every development account, for printing.
    Never call this outside development and tests: the password is public.
    """
    for code, name, tier, parent in SEED_BRANCHES:
        if session.get(Branch, code) is None:
            session.add(Branch(code=code, name=name, tier=tier.value, parent_code=parent))
            session.flush()  # in order: a county branch references its prefecture

    existing = set(session.exec(select(StaffUser.username)).all())
    missing = [seed for seed in SEED_USERS if seed.username not in existing]
    if missing:
        # One hash for the shared password keeps seeding (and every API test) fast.
        password_hash = hash_password(DEV_PASSWORD)
        for seed in missing:
            session.add(
                StaffUser(
                    username=seed.username,
                    full_name=seed.full_name,
                    password_hash=password_hash,
                    role=seed.role.value,
                    branch_code=seed.branch,
                    tier=seed.tier.value if seed.tier else None,
                    approval_limit_fen=to_fen(seed.limit) if seed.limit is not None else None,
                    household_id=SEED_HOUSEHOLDS.get(seed.username),
                )
            )
    session.commit()
    return list(SEED_USERS)
