"""Official notices (通知书): a loan's notices, a village's inspection sheets, each notice as
printable HTML or PDF, and its receipt slip (回执) marked when it comes back signed.

Everyone reads the notices of the branches they may see; loan officers, post-loan managers
and branch heads issue them; loan officers take receipts (D-3). Auditors only read.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from adapters.notices import IssuedNotice, NoticeBook, NoticeKind
from api.deps import CurrentActor, SessionDep, TemporalClientDep, require_roles
from api.routes.loans import LoanId
from api.routes.servicing import Village, VillageReader, staff
from api.services import notices
from domain.loan import Actor, PersonName, Role

router = APIRouter(tags=["notices"])

NoticeNumber = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{1,16}-[0-9]{4}-[0-9]{6}$")]
Issuer = Annotated[
    Actor, Depends(require_roles(Role.LOAN_OFFICER, Role.POST_LOAN_MANAGER, Role.BRANCH_HEAD))
]
ReceiptTaker = Annotated[Actor, Depends(staff("D-3", Role.LOAN_OFFICER))]
# A notice is served as the document it is: its own styles, nothing to run or fetch.
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


def _book(request: Request) -> NoticeBook:
    return notices.notice_book(request.app.state.sessions, request.app.state.settings)


BookDep = Annotated[NoticeBook, Depends(_book)]


class NoticeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: NoticeKind
    addressee: PersonName | None = None  # the borrower, who these notices are for


class ReceiptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    received_on: date


def _issued(response: Response, issued: tuple[IssuedNotice, bool]) -> IssuedNotice:
    notice, new = issued
    response.status_code = 201 if new else 200
    return notice


@router.get("/loans/{loan_id}/notices", response_model=list[IssuedNotice])
def list_loan_notices(
    loan_id: LoanId, actor: CurrentActor, session: SessionDep, book: BookDep
) -> list[IssuedNotice]:
    """The loan's notices, each with its number, addressee, day and receipt status."""
    return notices.loan_notices(session, book, actor, loan_id)


@router.post(
    "/loans/{loan_id}/notices",
    response_model=IssuedNotice,
    status_code=201,
    responses={200: {"description": "Issued before: the notice as first issued"}},
)
async def issue_loan_notice(
    loan_id: LoanId,
    body: NoticeBody,
    actor: Issuer,
    response: Response,
    session: SessionDep,
    client: TemporalClientDep,
    book: BookDep,
) -> IssuedNotice:
    """P-3 贷款到期通知书 or 提示付息通知书, or the X-5 借款展期协议 of an approved extension;
    refused (409, naming the rule) when it does not fit the loan. Asked again for the same
    occasion, it answers 200 with the notice first issued."""
    issued = await notices.issue_for_loan(
        session, client, book, actor, loan_id, body.kind, body.addressee
    )
    return _issued(response, issued)


@router.get("/inspections/villages/{village}/sheets", response_model=list[IssuedNotice])
def list_village_sheets(
    village: Village, actor: CurrentActor, session: SessionDep, book: BookDep
) -> list[IssuedNotice]:
    """K-2: the village's inspection sheets (贷后检查表) issued so far."""
    return notices.village_sheets(session, book, actor, village)


@router.post(
    "/inspections/villages/{village}/sheet",
    response_model=IssuedNotice,
    status_code=201,
    responses={200: {"description": "Issued before: the sheet as first issued"}},
)
async def issue_village_sheet(
    village: Village, actor: VillageReader, response: Response, session: SessionDep, book: BookDep
) -> IssuedNotice:
    """K-2: the inspection sheet for the village's farm micro-credit checks due in the
    branch, one row per household, signed on the visit by the officer and the village
    committee."""
    issued = await run_in_threadpool(notices.issue_village_sheet, session, book, actor, village)
    return _issued(response, issued)


# Before "/notices/{number}", which would take "….pdf" as the number.
@router.get("/notices/{number}.pdf", response_class=Response)
async def get_notice_pdf(
    number: NoticeNumber, actor: CurrentActor, session: SessionDep, book: BookDep
) -> Response:
    """The notice as an A4 PDF, rendered from its kept HTML."""
    pdf = await notices.notice_pdf(session, book, actor, number)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{number}.pdf"'},
    )


@router.get("/notices/{number}", response_class=HTMLResponse)
def get_notice(
    number: NoticeNumber, actor: CurrentActor, session: SessionDep, book: BookDep
) -> HTMLResponse:
    """The notice as issued: printable HTML (A4), kept as the evidence (C-5)."""
    row = notices.visible_notice(session, book, actor, number)
    return HTMLResponse(row.html, headers=HTML_HEADERS)


@router.post("/notices/{number}/receipt", response_model=IssuedNotice)
async def record_receipt(
    number: NoticeNumber,
    body: ReceiptBody,
    officer: ReceiptTaker,
    session: SessionDep,
    client: TemporalClientDep,
    book: BookDep,
) -> IssuedNotice:
    """The signed receipt slip (回执) came back: once, dated between the notice's day and
    today. An overdue notice's receipt is first recorded by the loan's workflow (D-3)."""
    return await notices.record_receipt(session, client, book, officer, number, body.received_on)
