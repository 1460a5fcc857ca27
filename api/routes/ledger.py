"""Institution-wide views: ledger balances and the notification outbox."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api.deps import SessionDep, require_roles
from api.schemas import NotificationView
from api.services import records
from domain.loan import Actor, Role

router = APIRouter(tags=["ledger"])

# Institution-wide, across branches: auditors and administrators only. Staff of a branch
# see a loan's entries and notices on the loan's own endpoints.
Overseer = Annotated[Actor, Depends(require_roles(Role.AUDITOR, Role.ADMIN))]


@router.get("/ledger/balances", response_model=dict[str, Decimal])
def ledger_balances(_: Overseer, request: Request) -> dict[str, Decimal]:
    """Balance (debit − credit) of every account in the journal."""
    return records.account_balances(request.app.state.sessions)


@router.get("/outbox", response_model=list[NotificationView])
def outbox(
    _: Overseer, session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[NotificationView]:
    """The latest notifications of all loans, recipients masked (H-3)."""
    return records.notifications(session, limit=limit)
