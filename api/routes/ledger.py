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

Supervisor = Annotated[Actor, Depends(require_roles(Role.BRANCH_HEAD, Role.AUDITOR, Role.ADMIN))]


@router.get("/ledger/balances", response_model=dict[str, Decimal])
def ledger_balances(_: Supervisor, request: Request) -> dict[str, Decimal]:
    """Balance (debit − credit) of every account in the journal."""
    return records.account_balances(request.app.state.sessions)


@router.get("/outbox", response_model=list[NotificationView])
def outbox(
    _: Supervisor, session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[NotificationView]:
    """The latest notifications of all loans, recipients masked (H-3)."""
    return records.notifications(session, limit=limit)
