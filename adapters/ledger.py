"""The ledger port and its embedded default: a double-entry journal in the database.

Every posting carries an idempotency key; posting the same key again returns the
entry already written, so an activity retry never posts twice (rule C-3).
"""

from __future__ import annotations

import abc
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.money import from_fen, has_at_most_cents, to_fen
from store.db import SessionFactory
from store.models import JournalEntry, JournalLine

LOANS_RECEIVABLE = "1301"  # 农户贷款
SETTLEMENT_DEPOSITS = "2011"  # 个人结算存款


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
    lines: list[PostingLine]


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
    posted_at: datetime
    lines: list[PostingLine]


class InvalidPosting(ValueError):
    """The posting is malformed; nothing was written."""


class UnbalancedPosting(InvalidPosting):
    """Debits and credits differ; nothing was written."""


class IdempotencyConflict(ValueError):
    """The key was already posted with different content."""


class Ledger(abc.ABC):
    @abc.abstractmethod
    def post(self, posting: Posting) -> PostingResult: ...

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


def _line_key(account: str, loan_id: str | None, debit_fen: int, credit_fen: int) -> tuple:
    return (account, loan_id, debit_fen, credit_fen)


def _as_utc(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


class SqlLedger(Ledger):
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def post(self, posting: Posting) -> PostingResult:
        validate_posting(posting)
        with self._sessions() as session:
            existing = self._existing(session, posting)
            if existing is not None:
                return existing
            entry = JournalEntry(
                idempotency_key=posting.idempotency_key,
                loan_id=posting.loan_id,
                kind=posting.kind,
                memo=posting.memo,
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
                session.commit()
            except IntegrityError:
                # Another worker posted the same key between our read and insert.
                session.rollback()
                existing = self._existing(session, posting)
                if existing is None:
                    raise
                return existing
            return PostingResult(entry_id=entry.id, already_posted=False)

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
                posted_at=_as_utc(e.posted_at),
                lines=by_entry.get(e.id, []),
            )
            for e in entries
            if e.id is not None
        ]
