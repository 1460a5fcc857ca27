"""Read-only views of what loans produced: schedules, ledger entries, the outbox."""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import Session, col, select

from adapters.ledger import LedgerEntryView, SqlLedger
from api.schemas import NotificationView
from domain.ids import mask_pii
from domain.loan import Installment
from domain.money import from_fen
from store.db import SessionFactory
from store.models import Notification, ScheduledInstallment

__all__ = ["LedgerEntryView", "account_balances", "ledger_entries", "notifications", "schedule"]


def schedule(session: Session, loan_id: str) -> list[Installment]:
    """The schedule as stored at disbursement (C-4), in the domain's own terms."""
    rows = session.exec(
        select(ScheduledInstallment)
        .where(ScheduledInstallment.loan_id == loan_id)
        .order_by(col(ScheduledInstallment.number))
    )
    return [
        Installment(
            number=r.number,
            due_date=r.due_date,
            principal=from_fen(r.principal_fen),
            interest=from_fen(r.interest_fen),
            payment=from_fen(r.payment_fen),
            remaining_principal=from_fen(r.remaining_principal_fen),
            days=r.days,
        )
        for r in rows
    ]


def ledger_entries(sessions: SessionFactory, loan_id: str) -> list[LedgerEntryView]:
    return SqlLedger(sessions).entries(loan_id)


def account_balances(sessions: SessionFactory) -> dict[str, Decimal]:
    return SqlLedger(sessions).account_balances()


def notifications(
    session: Session, *, loan_id: str | None = None, limit: int = 200
) -> list[NotificationView]:
    query = select(Notification).order_by(col(Notification.id).desc()).limit(limit)
    if loan_id is not None:
        query = query.where(Notification.loan_id == loan_id)
    return [
        NotificationView(
            id=n.id or 0,
            loan_id=n.loan_id,
            channel=n.channel,
            recipient=n.recipient_masked,
            template=n.template,
            body=mask_pii(n.body),
            status=n.status,
            attempts=n.attempts,
            last_error=mask_pii(n.last_error) if n.last_error else None,
            delivered_at=n.delivered_at,
            created_at=n.created_at,
        )
        for n in session.exec(query)
    ]
