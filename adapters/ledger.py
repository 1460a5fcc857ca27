"""The ledger port and its embedded default: a double-entry journal in the database.

Every posting carries an idempotency key; posting the same key again returns the
entry already written, so an activity retry never posts twice (rule C-3). A posting that
debits a borrower's settlement account can carry a ``FundsGuard``: the account must hold the
amount, checked in the transaction that writes the entry, so it is never overdrawn.
"""

from __future__ import annotations

import abc
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal

from pydantic import BaseModel, Field
from sqlalchemy import func, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.money import from_fen, has_at_most_cents, to_fen
from store.db import SessionFactory
from store.models import JournalEntry, JournalLine

CASH = "1001"  # 库存现金
LOANS_RECEIVABLE = "1301"  # 农户贷款
LOAN_LOSS_RESERVE = "1304"  # 贷款损失准备
SETTLEMENT_DEPOSITS = "2011"  # 个人结算存款
INTEREST_INCOME = "6011"  # 利息收入
CONTRACT_INTEREST = "6011.01"  # 利息收入—合同利息 (current and overdue)
PENALTY_INTEREST = "6011.02"  # 利息收入—罚息 and 复利
FEE_INCOME = "6021"  # 手续费及佣金收入: a prepayment fee (P-4)
# Off-balance memo accounts (表外登记): a written-off claim stays on record (账销案存, Z-1).
WRITTEN_OFF_MEMO = "7001"  # 核销贷款登记
WRITTEN_OFF_MEMO_CONTRA = "7002"  # 核销贷款登记对方科目


def settlement_account_code(settlement_account: str) -> str:
    """The ledger sub-account of a borrower's settlement account at the cooperative."""
    return f"{SETTLEMENT_DEPOSITS}.{settlement_account}"


class PostingLine(BaseModel):
    account: str = Field(min_length=1, max_length=40)
    loan_id: str | None = None
    debit: Decimal = Decimal("0")
    credit: Decimal = Decimal("0")


class Posting(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=200)
    loan_id: str | None
    kind: str = Field(min_length=1, max_length=40)
    memo: str = Field(default="", max_length=200)
    value_date: date | None = None  # the business day the entry belongs to (起息日)
    lines: list[PostingLine]


class FundsGuard(BaseModel):
    """Refuse the posting unless the settlement account holds what the posting debits from it."""

    settlement_account: str = Field(min_length=1)

    @property
    def account_code(self) -> str:
        return settlement_account_code(self.settlement_account)


class PostingResult(BaseModel):
    entry_id: int
    already_posted: bool


class LedgerEntryView(BaseModel):
    """A posted entry with its lines, amounts in yuan."""

    entry_id: int
    idempotency_key: str
    loan_id: str | None
    kind: str
    memo: str
    value_date: date | None
    posted_at: datetime
    lines: list[PostingLine]


class InvalidPosting(ValueError):
    """The posting is malformed; nothing was written."""


class UnbalancedPosting(InvalidPosting):
    """Debits and credits differ; nothing was written."""


class IdempotencyConflict(ValueError):
    """The key was already posted with different content."""


class InsufficientFunds(ValueError):
    """The guarded settlement account holds less than the posting debits; nothing was written."""

    def __init__(self, account: str, available: Decimal, needed: Decimal) -> None:
        super().__init__(f"{account}: available {available}, needed {needed}")
        self.account = account
        self.available = available
        self.needed = needed


class Ledger(abc.ABC):
    @abc.abstractmethod
    def post(self, posting: Posting, *, guard: FundsGuard | None = None) -> PostingResult:
        """Write the entry once per key; a key already posted returns that entry unchecked.

        With a guard, the entry is written only if the guarded settlement account holds at
        least what the posting debits from it (credits minus debits), else InsufficientFunds.
        """

    @abc.abstractmethod
    def available(self, settlement_account: str) -> Decimal:
        """Credits minus debits of the borrower's settlement account: what they can pay with."""

    @abc.abstractmethod
    def balance(self, account: str, loan_id: str | None = None) -> Decimal:
        """Debits minus credits; an account's balance includes its sub-accounts ("2011.x")."""

    @abc.abstractmethod
    def entries(self, loan_id: str) -> list[LedgerEntryView]: ...

    @abc.abstractmethod
    def account_balances(self) -> dict[str, Decimal]:
        """Debits minus credits per posted account code (sub-accounts separately)."""


def validate_posting(posting: Posting) -> None:
    if len(posting.lines) < 2:
        raise InvalidPosting(f"{posting.idempotency_key}: a posting needs at least two lines")
    debits = credits = Decimal("0")
    for n, line in enumerate(posting.lines, start=1):
        for side in (line.debit, line.credit):
            if not side.is_finite() or side < 0 or not has_at_most_cents(side):
                raise InvalidPosting(f"line {n}: {side} is not a positive amount in fen")
        if (line.debit > 0) == (line.credit > 0):
            raise InvalidPosting(f"line {n}: exactly one of debit and credit must be positive")
        debits += line.debit
        credits += line.credit
    if debits != credits:
        raise UnbalancedPosting(
            f"{posting.idempotency_key}: debits {debits} differ from credits {credits}"
        )


def guarded_amount(posting: Posting, guard: FundsGuard) -> Decimal:
    """What the posting takes out of the guarded account (its debits minus its credits)."""
    code = guard.account_code
    needed = sum((ln.debit - ln.credit for ln in posting.lines if ln.account == code), Decimal(0))
    if needed <= 0:
        # A guard on an account the posting does not debit would silently check nothing.
        raise InvalidPosting(f"{posting.idempotency_key}: the posting does not debit {code}")
    return needed


def _line_key(account: str, loan_id: str | None, debit_fen: int, credit_fen: int) -> tuple:
    return (account, loan_id, debit_fen, credit_fen)


def _as_utc(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


class SqlLedger(Ledger):
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def post(self, posting: Posting, *, guard: FundsGuard | None = None) -> PostingResult:
        validate_posting(posting)
        needed = guarded_amount(posting, guard) if guard is not None else Decimal(0)
        with self._sessions() as session:
            existing = self._existing(session, posting)
            if existing is not None:
                return existing
            if guard is not None:
                self._lock_account(session, guard.account_code)
            entry = JournalEntry(
                idempotency_key=posting.idempotency_key,
                loan_id=posting.loan_id,
                kind=posting.kind,
                memo=posting.memo,
                value_date=posting.value_date,
            )
            session.add(entry)
            try:
                session.flush()
                assert entry.id is not None
                for line in posting.lines:
                    session.add(
                        JournalLine(
                            entry_id=entry.id,
                            account_code=line.account,
                            loan_id=line.loan_id,
                            debit_fen=to_fen(line.debit),
                            credit_fen=to_fen(line.credit),
                        )
                    )
                if guard is not None:
                    session.flush()
                    # Read after our own insert, inside the same transaction: the balance
                    # includes this entry, and no other guarded debit can commit in between.
                    left = self._credits_minus_debits(session, guard.account_code)
                    if left < 0:
                        session.rollback()
                        raise InsufficientFunds(guard.account_code, left + needed, needed)
                session.commit()
            except IntegrityError:
                # Another worker posted the same key between our read and insert.
                session.rollback()
                existing = self._existing(session, posting)
                if existing is None:
                    raise
                return existing
            return PostingResult(entry_id=entry.id, already_posted=False)

    @staticmethod
    def _lock_account(session: Session, account_code: str) -> None:
        """Serialise guarded debits of one account until this transaction ends.

        SQLite needs nothing: its first insert takes the database's single write lock before
        the balance is read. PostgreSQL reads committed rows per statement, so two guarded
        debits could each see the other's money; a transaction-scoped advisory lock on the
        account's code makes the second wait until the first has committed.
        """
        if session.get_bind().dialect.name == "postgresql":
            session.connection().execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:account, 0))"),
                {"account": account_code},
            )

    @staticmethod
    def _credits_minus_debits(session: Session, account_code: str) -> Decimal:
        debit_fen, credit_fen = session.exec(
            select(
                func.coalesce(func.sum(JournalLine.debit_fen), 0),
                func.coalesce(func.sum(JournalLine.credit_fen), 0),
            ).where(JournalLine.account_code == account_code)
        ).one()
        return from_fen(int(credit_fen) - int(debit_fen))

    def available(self, settlement_account: str) -> Decimal:
        with self._sessions() as session:
            return self._credits_minus_debits(session, settlement_account_code(settlement_account))

    def _existing(self, session: Session, posting: Posting) -> PostingResult | None:
        entry = session.exec(
            select(JournalEntry).where(JournalEntry.idempotency_key == posting.idempotency_key)
        ).first()
        if entry is None:
            return None
        assert entry.id is not None
        stored = session.exec(select(JournalLine).where(JournalLine.entry_id == entry.id)).all()
        stored_lines = Counter(
            _line_key(ln.account_code, ln.loan_id, ln.debit_fen, ln.credit_fen) for ln in stored
        )
        wanted_lines = Counter(
            _line_key(ln.account, ln.loan_id, to_fen(ln.debit), to_fen(ln.credit))
            for ln in posting.lines
        )
        if (
            stored_lines != wanted_lines
            or entry.loan_id != posting.loan_id
            or entry.kind != posting.kind
        ):
            raise IdempotencyConflict(
                f"{posting.idempotency_key} was already posted as entry {entry.id} "
                "with different content"
            )
        return PostingResult(entry_id=entry.id, already_posted=True)

    def balance(self, account: str, loan_id: str | None = None) -> Decimal:
        sub_accounts = account.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = select(
            func.coalesce(func.sum(JournalLine.debit_fen), 0),
            func.coalesce(func.sum(JournalLine.credit_fen), 0),
        ).where(
            (col(JournalLine.account_code) == account)
            | col(JournalLine.account_code).like(f"{sub_accounts}.%", escape="\\")
        )
        if loan_id is not None:
            query = query.where(JournalLine.loan_id == loan_id)
        with self._sessions() as session:
            debit_fen, credit_fen = session.exec(query).one()
        return from_fen(int(debit_fen) - int(credit_fen))

    def account_balances(self) -> dict[str, Decimal]:
        query = (
            select(
                JournalLine.account_code,
                func.sum(JournalLine.debit_fen),
                func.sum(JournalLine.credit_fen),
            )
            .group_by(JournalLine.account_code)
            .order_by(JournalLine.account_code)
        )
        with self._sessions() as session:
            rows = session.exec(query).all()
        return {code: from_fen(int(debit) - int(credit)) for code, debit, credit in rows}

    def entries(self, loan_id: str) -> list[LedgerEntryView]:
        with self._sessions() as session:
            entries = session.exec(
                select(JournalEntry)
                .where(JournalEntry.loan_id == loan_id)
                .order_by(col(JournalEntry.id))
            ).all()
            ids = [e.id for e in entries]
            lines = session.exec(
                select(JournalLine)
                .where(col(JournalLine.entry_id).in_(ids))
                .order_by(col(JournalLine.id))
            ).all()
        by_entry: dict[int, list[PostingLine]] = {}
        for ln in lines:
            by_entry.setdefault(ln.entry_id, []).append(
                PostingLine(
                    account=ln.account_code,
                    loan_id=ln.loan_id,
                    debit=from_fen(ln.debit_fen),
                    credit=from_fen(ln.credit_fen),
                )
            )
        return [
            LedgerEntryView(
                entry_id=e.id,
                idempotency_key=e.idempotency_key,
                loan_id=e.loan_id,
                kind=e.kind,
                memo=e.memo,
                value_date=e.value_date,
                posted_at=_as_utc(e.posted_at),
                lines=by_entry.get(e.id, []),
            )
            for e in entries
            if e.id is not None
        ]
