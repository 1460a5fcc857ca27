"""Official notices (通知书): printable HTML from templates, numbered, kept as evidence.

The ``NoticeBook`` issues a notice once per idempotency key. It takes the branch's next
number for the year (``CB01-2026-000017``), gapless: the counter row stays locked until
the notice is stored with its number, or rolled back with it. The HTML is rendered with
that number and kept as issued (C-5); a PDF is rendered from the kept HTML on demand. A
notice with a receipt slip (回执, P-3, D-3) is marked once when the signed slip comes back.
No full resident ID or phone number is ever rendered (H-3).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel, Field
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from adapters.notifications import date_cn, percent, yuan
from domain.calendar import china_date
from domain.errors import ViolationKind, violation
from domain.ids import mask_pii
from domain.loan import RepaymentMethod
from domain.money import from_fen
from store.db import SessionFactory
from store.models import Branch, LoanRecord, Notice, NoticeCounter


class NoticeKind(StrEnum):
    """The official notices; each is the template ``notices/<kind>.html.j2``."""

    MATURITY_NOTICE = "maturity_notice"  # 贷款到期通知书, P-3
    INTEREST_REMINDER = "interest_reminder"  # 提示付息通知书, P-3
    OVERDUE_NOTICE = "overdue_notice"  # 逾期贷款催收通知书, D-2/D-3
    EXTENSION_AGREEMENT = "extension_agreement"  # 借款展期协议, X-5
    SETTLEMENT_CERTIFICATE = "settlement_certificate"  # 结清证明, P-7
    INSPECTION_SHEET = "inspection_sheet"  # 贷后检查表 of a village, K-2


TITLES = {
    NoticeKind.MATURITY_NOTICE: "贷款到期通知书",
    NoticeKind.INTEREST_REMINDER: "提示付息通知书",
    NoticeKind.OVERDUE_NOTICE: "逾期贷款催收通知书",
    NoticeKind.EXTENSION_AGREEMENT: "借款展期协议",
    NoticeKind.SETTLEMENT_CERTIFICATE: "结清证明",
    NoticeKind.INSPECTION_SHEET: "贷后检查表",
}
# The rule each notice serves; refusals about a notice name it.
RULES = {
    NoticeKind.MATURITY_NOTICE: "P-3",
    NoticeKind.INTEREST_REMINDER: "P-3",
    NoticeKind.OVERDUE_NOTICE: "D-3",
    NoticeKind.EXTENSION_AGREEMENT: "X-5",
    NoticeKind.SETTLEMENT_CERTIFICATE: "P-7",
    NoticeKind.INSPECTION_SHEET: "K-2",
}
# Notices printed with a tear-off receipt slip (回执) that must come back signed.
RECEIPT_KINDS = frozenset({NoticeKind.MATURITY_NOTICE, NoticeKind.OVERDUE_NOTICE})

METHOD_NAMES = {
    RepaymentMethod.LUMP_SUM: "利随本清",
    RepaymentMethod.INTEREST_MONTHLY: "按月结息、到期还本",
    RepaymentMethod.INTEREST_QUARTERLY: "按季结息、到期还本",
    RepaymentMethod.EQUAL_INSTALLMENT: "等额本息",
    RepaymentMethod.EQUAL_PRINCIPAL: "等额本金",
}
_ISSUE_ATTEMPTS = 5  # a concurrent issuer creating the year's counter row forces a retry


class NoticeRenderer:
    """Renders ``notices/<kind>.html.j2``: autoescaped, a missing variable raises
    (StrictUndefined, never a half-empty notice), and any ID or phone number that free text
    (a name, a reason) carried in is masked (H-3)."""

    def __init__(self, templates_dir: Path) -> None:
        self._env = Environment(
            loader=FileSystemLoader(str(templates_dir / "notices")),
            undefined=StrictUndefined,
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters.update(yuan=yuan, percent=percent, date_cn=date_cn)

    def render(self, kind: NoticeKind, context: Mapping[str, Any]) -> str:
        template = self._env.get_template(f"{kind.value}.html.j2")
        return mask_pii(template.render({**context, "title": TITLES[kind]}))


def render_pdf(html: str) -> bytes:
    """The notice as an A4 PDF, in the fonts its CSS names. CPU-bound: keep it off the
    event loop."""
    # WeasyPrint (and Pango) load only in the processes that make PDFs.
    from weasyprint import HTML

    pdf: bytes = HTML(string=html).write_pdf()
    return pdf


def register_particulars(record: LoanRecord) -> dict[str, Any]:
    """The borrower and the loan as the register (贷款台账) has them, masked (H-3): the
    figures every loan notice shows. Refuses a loan not yet paid out."""
    if record.disbursed_at is None or record.annual_rate is None:
        raise ValueError(f"loan {record.loan_id} has not been paid out")
    amount = record.amount_approved_fen
    return {
        "loan_id": record.loan_id,
        "name": record.applicant_name,
        "id_number_masked": record.id_number_masked,
        "phone_masked": record.phone_masked,
        "amount": from_fen(amount if amount is not None else record.amount_requested_fen),
        "annual_rate": Decimal(record.annual_rate),
        "disbursed_on": china_date(record.disbursed_at),
        "maturity_date": record.maturity_date,
    }


class NoticeRequest(BaseModel):
    """A notice to issue: its kind, addressee and day, for a loan (or a branch's village),
    and the template's figures."""

    idempotency_key: str = Field(min_length=1, max_length=200)
    kind: NoticeKind
    branch_code: str = Field(min_length=1, max_length=16)
    loan_id: str | None
    addressee: str = Field(min_length=1, max_length=100)
    issued_on: date
    issued_by: str = Field(min_length=1, max_length=64)  # a username, or "workflow"
    round_key: str | None = Field(default=None, max_length=120)  # the workflow's D-3 notice
    context: dict[str, Any] = Field(default_factory=dict)


class IssuedNotice(BaseModel):
    """A notice as issued (without its HTML) and where its receipt slip stands."""

    number: str
    kind: NoticeKind
    title: str
    loan_id: str | None
    branch_code: str
    addressee: str
    round_key: str | None
    issued_on: date
    issued_by: str
    receipt: Literal["none", "awaited", "returned"]
    receipt_returned_on: date | None
    receipt_recorded_by: str | None

    @classmethod
    def of(cls, row: Notice) -> IssuedNotice:
        kind = NoticeKind(row.kind)
        receipt: Literal["none", "awaited", "returned"] = "none"
        if row.receipt_required:
            receipt = "returned" if row.receipt_returned_on is not None else "awaited"
        return cls(
            number=row.number,
            kind=kind,
            title=TITLES[kind],
            loan_id=row.loan_id,
            branch_code=row.branch_code,
            addressee=row.addressee,
            round_key=row.round_key,
            issued_on=row.issued_on,
            issued_by=row.issued_by,
            receipt=receipt,
            receipt_returned_on=row.receipt_returned_on,
            receipt_recorded_by=row.receipt_recorded_by,
        )


class UnknownBranch(ValueError):
    """The issuing branch is not in the branches table: no letterhead to print."""


def clerk_instruction(notice: IssuedNotice) -> str:
    """What the outbox's print row tells the clerk (书面通知 to print and hand over)."""
    slip = "，回执签收后交回登记" if notice.receipt != "none" else ""
    return f"请打印{notice.title}（编号{notice.number}）送达{notice.addressee}{slip}。"


class NoticeBook:
    """Issues, keeps and finds the official notices (SQL, sessions from ``store.db``)."""

    def __init__(
        self, sessions: SessionFactory, renderer: NoticeRenderer, cooperative_name: str
    ) -> None:
        self._sessions = sessions
        self._renderer = renderer
        self._cooperative_name = cooperative_name

    def issue(self, request: NoticeRequest) -> tuple[IssuedNotice, bool]:
        """The notice for the request's key, and whether this call issued it (False: it had
        been issued before, and is returned as it was). A template that cannot be rendered
        raises, and no number is used up."""
        for _ in range(_ISSUE_ATTEMPTS):
            with self._sessions() as session:
                existing = _by_key(session, request.idempotency_key)
                if existing is not None:
                    return IssuedNotice.of(existing), False
                branch = session.get(Branch, request.branch_code)
                if branch is None:
                    raise UnknownBranch(
                        f"branch {request.branch_code} is not in the branches table"
                    )
                try:
                    row = self._issue(session, request, branch)
                    session.commit()
                except IntegrityError:
                    # Another issuer created this year's counter, or issued this very key,
                    # first: our number went back with the rollback; look again.
                    session.rollback()
                    continue
                return IssuedNotice.of(row), True
        raise RuntimeError(f"notice {request.idempotency_key}: too many concurrent issuers")

    def _issue(self, session: Session, request: NoticeRequest, branch: Branch) -> Notice:
        serial = _next_serial(session, branch.code, request.issued_on.year)
        number = f"{branch.code}-{request.issued_on.year}-{serial:06d}"
        html = self._renderer.render(
            request.kind,
            {
                **request.context,
                "number": number,
                "cooperative_name": self._cooperative_name,
                "branch_name": branch.name,
                "addressee": request.addressee,
                "issued_on": request.issued_on,
            },
        )
        row = Notice(
            number=number,
            idempotency_key=request.idempotency_key,
            loan_id=request.loan_id,
            branch_code=branch.code,
            kind=request.kind.value,
            addressee=request.addressee,
            round_key=request.round_key,
            issued_on=request.issued_on,
            issued_by=request.issued_by,
            html=html,
            receipt_required=request.kind in RECEIPT_KINDS,
        )
        session.add(row)
        session.flush()
        return row

    def mark_receipt(
        self, number: str, received_on: date, recorded_by: str, today: date
    ) -> IssuedNotice:
        """The signed receipt slip came back on ``received_on``: marked once (see
        ``check_receipt``); a concurrent second marking is refused too."""
        with self._sessions() as session:
            row = _by_number(session, number)
            if row is None:
                raise LookupError(f"no notice {number}")
            check_receipt(row, received_on, today)
            marked = session.exec(
                update(Notice)
                .where(col(Notice.number) == number, col(Notice.receipt_returned_on).is_(None))
                .values(receipt_returned_on=received_on, receipt_recorded_by=recorded_by)
            )
            if marked.rowcount != 1:  # someone marked it a moment ago
                session.rollback()
                session.refresh(row)
                raise _already_marked(row)
            session.commit()
            session.refresh(row)
            return IssuedNotice.of(row)

    def find(self, number: str) -> Notice | None:
        """The notice as kept, with its HTML."""
        with self._sessions() as session:
            return _by_number(session, number)

    def issued(self, idempotency_key: str) -> IssuedNotice | None:
        """The notice issued for a key, if it has been."""
        with self._sessions() as session:
            row = _by_key(session, idempotency_key)
            return IssuedNotice.of(row) if row is not None else None

    def of_loan(self, loan_id: str) -> list[IssuedNotice]:
        with self._sessions() as session:
            rows = session.exec(
                select(Notice)
                .where(Notice.loan_id == loan_id)
                .order_by(col(Notice.issued_on), col(Notice.id))
            )
            return [IssuedNotice.of(r) for r in rows]

    def sheets_of_village(self, branches: set[str] | None, village: str) -> list[IssuedNotice]:
        """K-2: a village's inspection sheets in the given branches (None: every branch)."""
        query = select(Notice).where(
            Notice.kind == NoticeKind.INSPECTION_SHEET.value, Notice.addressee == village
        )
        if branches is not None:
            query = query.where(col(Notice.branch_code).in_(branches))
        with self._sessions() as session:
            rows = session.exec(query.order_by(col(Notice.issued_on), col(Notice.id)))
            return [IssuedNotice.of(r) for r in rows]

    def register_line(self, loan_id: str) -> LoanRecord | None:
        """The loan's register row: its branch numbers the notice, its figures fill it."""
        with self._sessions() as session:
            return session.get(LoanRecord, loan_id)


def check_receipt(row: Notice, received_on: date, today: date) -> None:
    """A receipt may be marked on a notice with a slip, once, dated from the day it was
    issued to ``today``; the refusal names the notice's rule (D-3, P-3)."""
    kind = NoticeKind(row.kind)
    rule = RULES[kind]
    if not row.receipt_required:
        raise violation(rule, f"notice {row.number} ({TITLES[kind]}) has no receipt slip")
    if row.receipt_returned_on is not None:
        raise _already_marked(row)
    if received_on < row.issued_on:
        raise violation(
            rule,
            f"received_on {received_on} is before notice {row.number} was issued on "
            f"{row.issued_on}",
            ViolationKind.INVALID,
            "received_on",
        )
    if received_on > today:
        raise violation(
            rule,
            f"received_on {received_on} is in the future (today is {today})",
            ViolationKind.INVALID,
            "received_on",
        )


def _next_serial(session: Session, branch_code: str, year: int) -> int:
    """The branch's next number in the year. SELECT ... FOR UPDATE locks the counter row on
    PostgreSQL until the transaction ends; SQLite has no row locks, but the increment below
    takes its database write lock, held as long. Either way the increment is relative, so two
    issuers never get the same number, and a rollback gives the number back (no gap)."""
    where = (col(NoticeCounter.branch_code) == branch_code, col(NoticeCounter.year) == year)
    counter = session.exec(select(NoticeCounter).where(*where).with_for_update()).first()
    if counter is None:
        session.add(NoticeCounter(branch_code=branch_code, year=year, last_number=0))
        session.flush()  # IntegrityError if a concurrent issuer has just created it
    session.exec(
        update(NoticeCounter)
        .where(*where)
        .values(last_number=col(NoticeCounter.last_number) + 1)
        .execution_options(synchronize_session=False)
    )
    return session.exec(select(NoticeCounter.last_number).where(*where)).one()


def _by_key(session: Session, key: str) -> Notice | None:
    return session.exec(select(Notice).where(Notice.idempotency_key == key)).first()


def _by_number(session: Session, number: str) -> Notice | None:
    return session.exec(select(Notice).where(Notice.number == number)).first()


def _already_marked(row: Notice) -> Exception:
    return violation(
        RULES[NoticeKind(row.kind)],
        f"the receipt of notice {row.number} was recorded on {row.receipt_returned_on} by "
        f"{row.receipt_recorded_by}",
    )
