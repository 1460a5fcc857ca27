"""Official notices (通知书) at the API: issued on demand, listed, read as HTML or PDF, and
their receipt slips (回执) marked.

A loan's notice is built from the register, the loan's workflow (its query: the schedule
and figures as they stand, the extension's terms) and the input its post-loan run started
with (the borrower's account and the guarantors, which the query does not carry), and is
refused, naming the rule, when it does not fit the loan. The overdue notices (D-2) and
the settlement certificate (P-7) are the workflow's to issue; staff read and reprint them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from adapters.notices import (
    METHOD_NAMES,
    RULES,
    TITLES,
    IssuedNotice,
    NoticeBook,
    NoticeKind,
    NoticeRenderer,
    NoticeRequest,
    check_receipt,
    register_particulars,
    render_pdf,
)
from api.errors import ApiError
from api.services import loans, servicing
from domain.calendar import china_date
from domain.errors import ViolationKind, violation
from domain.ids import mask_id_number
from domain.loan import Actor, RepaymentMethod, Stage
from domain.reminders import INSTALLMENT_METHODS
from settings import PROJECT_DIR, Settings
from store.db import SessionFactory
from store.models import LoanRecord, Notice
from workflows.messages import (
    ExtensionRecord,
    LoanStatus,
    RecordNoticeReceipt,
    ServiceLoan,
    ServicingView,
    workflow_id_for,
)
from workflows.servicing import LoanServicingWorkflow

# The kinds staff issue for a loan; the workflow issues the others.
ON_DEMAND = frozenset(
    {NoticeKind.MATURITY_NOTICE, NoticeKind.INTEREST_REMINDER, NoticeKind.EXTENSION_AGREEMENT}
)


@cache
def _renderer() -> NoticeRenderer:
    return NoticeRenderer(PROJECT_DIR / "templates")


def notice_book(sessions: SessionFactory, settings: Settings) -> NoticeBook:
    return NoticeBook(sessions, _renderer(), settings.cooperative_name)


def _today() -> date:
    return china_date(datetime.now(UTC))


# ---------------------------------------------------------------- reading


def visible_notice(session: Session, book: NoticeBook, actor: Actor, number: str) -> Notice:
    """The notice as kept: 404 when unknown, 403 when another branch's (the loans' rule)."""
    row = book.find(number)
    if row is None:
        raise ApiError(404, f"no notice {number}", field="number")
    branches = loans.visible_branches(session, actor)
    if branches is not None and row.branch_code not in branches:
        raise ApiError(403, f"notice {number} belongs to branch {row.branch_code}")
    return row


def loan_notices(
    session: Session, book: NoticeBook, actor: Actor, loan_id: str
) -> list[IssuedNotice]:
    loans.get_loan_record(session, actor, loan_id)
    return book.of_loan(loan_id)


def village_sheets(
    session: Session, book: NoticeBook, actor: Actor, village: str
) -> list[IssuedNotice]:
    """K-2: the village's inspection sheets in the branches the actor may see."""
    return book.sheets_of_village(loans.visible_branches(session, actor), village)


async def notice_pdf(session: Session, book: NoticeBook, actor: Actor, number: str) -> bytes:
    """The kept HTML as PDF, rendered on a worker thread (CPU-bound, never on the loop)."""
    row = await run_in_threadpool(visible_notice, session, book, actor, number)
    return await run_in_threadpool(render_pdf, row.html)


# ---------------------------------------------------------------- issuing for a loan


async def issue_for_loan(
    session: Session,
    client: Client,
    book: NoticeBook,
    actor: Actor,
    loan_id: str,
    kind: NoticeKind,
    addressee: str | None,
) -> tuple[IssuedNotice, bool]:
    """A P-3 notice or an X-5 agreement for the loan, once per loan and occasion (the same
    request again returns the notice first issued), and whether this call issued it."""
    record = await run_in_threadpool(loans.get_loan_record, session, actor, loan_id)
    if kind not in ON_DEMAND:
        raise _not_on_demand(kind)
    if record.stage != Stage.REPAYING.value:
        raise violation(
            RULES[kind],
            f"loan {loan_id} is in stage '{record.stage}'; a {TITLES[kind]} is for a loan "
            "being repaid",
        )
    status = (await loans.loan_detail(session, client, actor, loan_id)).workflow
    if status is None or status.servicing is None:
        raise violation(RULES[kind], f"loan {loan_id} is not in post-loan management")
    start = await _servicing_input(client, loan_id)
    borrower = start.application.applicant.name
    if addressee is not None and addressee != borrower:
        raise violation(
            RULES[kind],
            f"a {TITLES[kind]} is addressed to the borrower {borrower}",
            ViolationKind.INVALID,
            "addressee",
        )
    today = _today()
    if kind is NoticeKind.EXTENSION_AGREEMENT:
        key, context = await _agreement(book, record, status, status.servicing, start, today)
    elif kind is NoticeKind.MATURITY_NOTICE:
        key, context = _maturity_notice(status, status.servicing, start)
    else:
        key, context = _interest_reminder(status, status.servicing, start)
    request = NoticeRequest(
        idempotency_key=key,
        kind=kind,
        branch_code=record.branch_code,
        loan_id=loan_id,
        addressee=borrower,
        issued_on=today,
        issued_by=actor.username,
        context={**register_particulars(record), **context},
    )
    return await run_in_threadpool(book.issue, request)


def _not_on_demand(kind: NoticeKind) -> Exception:
    if kind is NoticeKind.INSPECTION_SHEET:
        return violation(
            "K-2",
            "an inspection sheet is issued for a village: "
            "POST /inspections/villages/{village}/sheet",
            ViolationKind.INVALID,
            "kind",
        )
    who = {
        NoticeKind.OVERDUE_NOTICE: "post-loan management issues it to the borrower and each "
        "guarantor when the loan falls overdue (D-2) and renews it (D-3)",
        NoticeKind.SETTLEMENT_CERTIFICATE: "post-loan management issues it when the loan is "
        "repaid in full",
    }[kind]
    return violation(
        "D-2" if kind is NoticeKind.OVERDUE_NOTICE else "P-7",
        f"a {TITLES[kind]} is not issued on demand: {who}; reprint it from GET /notices/{{number}}",
    )


async def _servicing_input(client: Client, loan_id: str) -> ServiceLoan:
    """What the loan's current post-loan run started with: the application (the borrower's
    account, the guarantors) and the loan's pinned policy, which the query leaves out."""
    handle = client.get_workflow_handle(workflow_id_for(loan_id))
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [start] = await client.data_converter.decode(payloads, [ServiceLoan])
        assert isinstance(start, ServiceLoan)
        return start
    raise ApiError(409, f"loan {loan_id} has no post-loan run")


def _account(start: ServiceLoan) -> str:
    return "****" + start.application.applicant.settlement_account[-4:]


def _method(status: LoanStatus, view: ServicingView) -> RepaymentMethod:
    """The repayment method now: as approved, or as a signed extension set it (X-6)."""
    assert status.approved is not None
    signed = [
        e.repayment_method
        for e in view.extensions
        if e.outcome == "signed" and e.repayment_method is not None
    ]
    return signed[-1] if signed else status.approved.repayment_method


def _maturity_notice(
    status: LoanStatus, view: ServicingView, start: ServiceLoan
) -> tuple[str, dict[str, Any]]:
    """P-3: 贷款到期通知书, not for installment loans; what falls due at maturity."""
    method = _method(status, view)
    if method in INSTALLMENT_METHODS:
        raise violation(
            "P-3",
            f"loan {status.loan_id} is repaid in installments ({METHOD_NAMES[method]}); "
            "installment loans get no maturity notice",
        )
    if view.next_due_date is None or not status.schedule:
        raise violation("P-3", f"loan {status.loan_id} has no maturity ahead")
    last = status.schedule[-1]
    payment = last.payment + view.arrears
    request_days = start.policy.extension.extension_request_days
    # Once the figures change (a payment of arrears, a prepayment), a new notice is due.
    key = f"{workflow_id_for(status.loan_id)}/maturity-notice/{last.due_date}/{payment}"
    return key, {
        "repayment_method": METHOD_NAMES[method],
        "due_date": last.due_date,
        "settlement_account_masked": _account(start),
        "principal_outstanding": view.principal_outstanding,
        "arrears": view.arrears,
        "payment": payment,
        "extension_request_by": last.due_date - timedelta(days=request_days),
    }


def _interest_reminder(
    status: LoanStatus, view: ServicingView, start: ServiceLoan
) -> tuple[str, dict[str, Any]]:
    """P-3: 提示付息通知书 before the next interest date."""
    line = next((i for i in status.schedule if i.due_date == view.next_due_date), None)
    if line is None or line.interest <= 0:
        raise violation(
            "P-3", f"loan {status.loan_id} has no interest date ahead to remind the borrower of"
        )
    wf = workflow_id_for(status.loan_id)
    key = f"{wf}/interest-reminder/{line.number}/{line.due_date}/{line.payment}"
    return key, {
        "due_date": line.due_date,
        "installment": line.number,
        "installments": len(status.schedule),
        "interest": line.interest,
        "principal": line.principal,
        "payment": line.payment,
        "maturity_date": status.schedule[-1].due_date,
        "settlement_account_masked": _account(start),
    }


async def _agreement(
    book: NoticeBook,
    record: LoanRecord,
    status: LoanStatus,
    view: ServicingView,
    start: ServiceLoan,
    today: date,
) -> tuple[str, dict[str, Any]]:
    """X-5: 借款展期协议 for an extension approved on the original's route (X-4), to be
    signed before the original maturity by the borrower and every guarantor."""
    extension = _agreed_extension(record.loan_id, view.extensions)
    key = f"{extension.key_prefix}/agreement"
    if extension.outcome == "signed":
        if await run_in_threadpool(book.issued, key) is None:
            raise violation(
                "X-5",
                f"the extension of loan {record.loan_id} was signed on {extension.signed_on} "
                f"(agreement {extension.agreement_number}); its agreement can no longer be issued",
            )
        return key, {}  # the agreement as issued before signing
    original_maturity = status.maturity_date
    assert original_maturity is not None and status.signing is not None
    assert extension.new_maturity is not None and extension.repayment_method is not None
    if today >= original_maturity:
        raise violation(
            "X-5",
            f"an extension agreement is signed before the original maturity {original_maturity}",
        )
    return key, {
        "guarantors": [
            {"name": g.name, "id_number_masked": mask_id_number(g.id_number)}
            for g in start.application.guarantors
        ],
        "contract_number": status.signing.contract_number,
        "original_maturity": original_maturity,
        "requested_on": extension.request.requested_on,
        "reason": extension.request.reason,
        "principal_outstanding": view.principal_outstanding,
        "months": extension.months,
        "new_maturity": extension.new_maturity,
        "annual_rate": extension.annual_rate,
        "repayment_method": METHOD_NAMES[extension.repayment_method],
    }


def _agreed_extension(loan_id: str, extensions: list[ExtensionRecord]) -> ExtensionRecord:
    agreed = [e for e in extensions if e.outcome in ("approved", "signed")]
    if not agreed:
        raise violation(
            "X-5",
            f"loan {loan_id} has no approved extension awaiting its agreement (X-4 approves "
            "an extension first)",
        )
    return agreed[-1]


# ---------------------------------------------------------------- the village sheet (K-2)


def issue_village_sheet(
    session: Session, book: NoticeBook, actor: Actor, village: str
) -> tuple[IssuedNotice, bool]:
    """K-2: the inspection sheet of the village's farm micro-credit checks due in the actor's
    branch, one row per household; the same households give the same sheet again."""
    batch = next(
        (b for b in servicing.village_inspections(session, actor) if b.village == village), None
    )
    if batch is None:
        raise violation(
            "K-2",
            f"no routine check of a farm micro-credit loan is due in {village} "
            f"(branch {actor.branch})",
        )
    ids = [h.loan_id for h in batch.households]
    phones = dict(
        session.exec(
            select(LoanRecord.loan_id, LoanRecord.phone_masked).where(
                col(LoanRecord.loan_id).in_(ids)
            )
        ).all()
    )
    tasks = "\n".join(sorted(h.task_key for h in batch.households))
    digest = hashlib.sha256(tasks.encode()).hexdigest()[:16]
    request = NoticeRequest(
        idempotency_key=f"inspection-sheet/{actor.branch}/{village}/{digest}",
        kind=NoticeKind.INSPECTION_SHEET,
        branch_code=actor.branch,
        loan_id=None,
        addressee=village,
        issued_on=_today(),
        issued_by=actor.username,
        context={
            "due_on": batch.due_on,
            "households": [
                {
                    "household_id": h.household_id,
                    "borrower_name": h.borrower_name,
                    "phone_masked": phones[h.loan_id],
                    "loan_id": h.loan_id,
                    "due_on": h.due_on,
                }
                for h in batch.households
            ],
        },
    )
    return book.issue(request)


# ---------------------------------------------------------------- receipts


async def record_receipt(
    session: Session,
    client: Client,
    book: NoticeBook,
    actor: Actor,
    number: str,
    received_on: date,
) -> IssuedNotice:
    """The signed receipt slip came back: marked once, dated from the notice's day to today.

    An overdue notice's receipt is the workflow's D-3 fact: its ``record_notice_receipt``
    step goes first, and the notice is marked only once the step is accepted (or already
    was, through another addressee's slip of the same round). Other slips are marked
    directly."""
    row = await run_in_threadpool(visible_notice, session, book, actor, number)
    if row.round_key is not None and row.loan_id is not None:
        today = await _receipt_to_workflow(session, client, actor, row, received_on)
    else:
        today = _today()
        check_receipt(row, received_on, today)
    return await run_in_threadpool(book.mark_receipt, number, received_on, actor.username, today)


async def _receipt_to_workflow(
    session: Session, client: Client, actor: Actor, row: Notice, received_on: date
) -> date:
    """Records the round's receipt in the loan's workflow unless it is there already;
    returns the loan's day as its workflow counts it (the day receipts are checked against)."""
    assert row.round_key is not None and row.loan_id is not None
    status = (await loans.loan_detail(session, client, actor, row.loan_id)).workflow
    view = status.servicing if status else None
    today = view.today if view else _today()
    check_receipt(row, received_on, today)
    round_ = (
        next((n for n in view.notices if n.notice_key == row.round_key), None) if view else None
    )
    if round_ is None or round_.receipt_on is None:
        await servicing.step(
            session,
            client,
            actor,
            row.loan_id,
            LoanServicingWorkflow.record_notice_receipt,
            RecordNoticeReceipt(actor=actor, notice_key=row.round_key, received_on=received_on),
            f"notice-receipt:{row.number}",  # a retry returns the first answer
        )
    return today
