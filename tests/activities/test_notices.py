"""Official notices (通知书): templates against golden files, numbering, receipts, the activity.

Golden files: ``tests/golden/notices/<sample>.html`` hold every notice kind rendered against
sample loans with a fixed number and dates; ``LOANFLOW_UPDATE_GOLDEN=1`` rewrites them (look
at the difference before committing it). Rules: P-3, D-2, D-3, X-5, P-7, K-2, H-3, C-5.
"""

from __future__ import annotations

import os
import re
import threading
import zlib
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError, meta
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notifications import IssueNoticeInput, NotificationActivities
from adapters.notices import (
    RECEIPT_KINDS,
    TITLES,
    IssuedNotice,
    NoticeBook,
    NoticeKind,
    NoticeRenderer,
    NoticeRequest,
    UnknownBranch,
    register_particulars,
    render_pdf,
)
from adapters.notifications import OutboxNotifier, TemplateRenderer
from domain.errors import RuleViolation, ViolationKind
from domain.ids import mask_pii
from store.db import SessionFactory
from store.models import Branch, LoanRecord, Notice, NoticeCounter, Notification

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "notices"
UPDATE_GOLDEN = os.environ.get("LOANFLOW_UPDATE_GOLDEN") == "1"

ID_NUMBER = "410102198503150010"
PHONE = "13812345678"
D = Decimal

# What the NoticeBook adds to every notice: the heading, the branch, the number, the day.
LAYOUT = {
    "cooperative_name": "示范县农村信用合作联社",
    "branch_name": "示范县支行",
    "number": "CB01-2026-000017",
}
BORROWER = {
    "name": "张大山",
    "id_number_masked": "4101**********0010",
    "phone_masked": "138****5678",
    "loan_id": "LN20260110A1B2C3D4",
}
LOAN = {
    **BORROWER,
    "amount": D("30000.00"),
    "disbursed_on": date(2026, 1, 10),
}
SAMPLES: dict[str, tuple[NoticeKind, dict[str, Any]]] = {
    "maturity_notice": (
        NoticeKind.MATURITY_NOTICE,
        {
            **LAYOUT,
            **LOAN,
            "addressee": "张大山",
            "issued_on": date(2026, 12, 31),
            "annual_rate": D("0.0720"),
            "repayment_method": "按月结息、到期还本",
            "due_date": date(2027, 1, 10),
            "settlement_account_masked": "****5678",
            "principal_outstanding": D("30000.00"),
            "arrears": "0.00",  # as the API's JSON-ready figures may arrive
            "payment": D("30180.00"),
            "extension_request_by": date(2026, 12, 26),
        },
    ),
    "interest_reminder": (
        NoticeKind.INTEREST_REMINDER,
        {
            **LAYOUT,
            **LOAN,
            "addressee": "张大山",
            "issued_on": date(2026, 5, 5),
            "annual_rate": D("0.0720"),
            "maturity_date": date(2027, 1, 10),
            "due_date": date(2026, 5, 10),
            "installment": 4,
            "installments": 12,
            "interest": D("180.00"),
            "principal": D("0.00"),
            "payment": D("180.00"),
            "settlement_account_masked": "****5678",
        },
    ),
    "overdue_notice": (
        NoticeKind.OVERDUE_NOTICE,
        {
            **LAYOUT,
            **LOAN,
            "addressee": "张大山",
            "as_guarantor": False,
            "issued_on": date(2026, 6, 11),
            "maturity_date": date(2027, 1, 10),
            "overdue_since": date(2026, 6, 10),
            "overdue_principal": "0.00",
            "overdue_interest": "180.00",
            "penalty": "0.05",
            "total": "180.05",
        },
    ),
    "settlement_certificate": (
        NoticeKind.SETTLEMENT_CERTIFICATE,
        {
            **LAYOUT,
            **{k: v for k, v in LOAN.items() if k != "phone_masked"},  # a certificate has none
            "addressee": "张大山",
            "issued_on": date(2027, 1, 10),
            "closed_on": date(2027, 1, 10),
            "principal": D("30000.00"),
            "interest": D("2190.00"),
            "penalty": "0.05",
            "guarantors": ["李四"],
            "collateral": [],
        },
    ),
    "extension_agreement": (
        NoticeKind.EXTENSION_AGREEMENT,
        {
            **LAYOUT,
            **BORROWER,
            "addressee": "张大山",
            "issued_on": date(2026, 12, 15),
            "guarantors": [{"name": "李四", "id_number_masked": "4101**********0276"}],
            "contract_number": "HT-2026-0001",
            "amount": D("30000.00"),
            "disbursed_on": date(2026, 1, 10),
            "original_maturity": date(2027, 1, 10),
            "requested_on": date(2026, 12, 10),
            # a phone number typed into the reason is masked (H-3)
            "reason": f"生猪价格下跌，延后出栏（联系{PHONE}）",
            "principal_outstanding": D("30000.00"),
            "months": 6,
            "new_maturity": date(2027, 7, 10),
            "annual_rate": D("0.0750"),
            "repayment_method": "按月结息、到期还本",
        },
    ),
    "inspection_sheet": (
        NoticeKind.INSPECTION_SHEET,
        {
            **LAYOUT,
            "addressee": "前进村",
            "issued_on": date(2026, 7, 1),
            "due_on": date(2026, 7, 10),
            "households": [
                {
                    "household_id": f"HH-410102-{n:04d}",
                    "borrower_name": name,
                    "phone_masked": "139****4321",
                    "loan_id": f"LN2026011{n}00000000",
                    "due_on": date(2026, 7, 9 + n),
                }
                for n, name in enumerate(["王秀兰", "赵铁柱", "欧阳明华"], start=1)
            ],
        },
    ),
}
GUARANTOR_VARIANT = {**SAMPLES["overdue_notice"][1], "addressee": "李四", "as_guarantor": True}
VARIANTS = {
    **SAMPLES,
    "overdue_notice_guarantor": (NoticeKind.OVERDUE_NOTICE, GUARANTOR_VARIANT),
}


@pytest.fixture(scope="module")
def renderer() -> NoticeRenderer:
    return NoticeRenderer(TEMPLATES)


def test_every_kind_has_a_template_and_a_sample() -> None:
    names = {p.name.removesuffix(".html.j2") for p in (TEMPLATES / "notices").glob("*.html.j2")}
    assert names == {"_base", *(kind.value for kind in NoticeKind)}
    assert {kind for kind, _ in SAMPLES.values()} == set(NoticeKind)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_notice_matches_its_golden_file(name: str, renderer: NoticeRenderer) -> None:
    kind, context = VARIANTS[name]
    html = renderer.render(kind, context)
    golden = GOLDEN / f"{name}.html"
    if UPDATE_GOLDEN:
        golden.write_text(html, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}: run with LOANFLOW_UPDATE_GOLDEN=1"
    assert html == golden.read_text(encoding="utf-8"), (
        f"{name} differs from {golden}; if the change is wanted, LOANFLOW_UPDATE_GOLDEN=1"
    )


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_notice_reads_as_an_official_document(name: str, renderer: NoticeRenderer) -> None:
    kind, context = VARIANTS[name]
    html = renderer.render(kind, context)
    assert html.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in html
    assert "size: A4" in html and '"WenQuanYi Micro Hei"' in html
    assert f"<h1>{TITLES[kind]}</h1>" in html
    assert "示范县农村信用合作联社" in html and "示范县支行" in html
    assert "编号：CB01-2026-000017" in html
    assert context["issued_on"].strftime("%Y年%-m月%-d日") in html
    # H-3: only masked numbers, whatever free text carried in
    assert mask_pii(html) == html and PHONE not in html and ID_NUMBER not in html
    # a tear-off receipt slip (回执) with signature and date lines where the rule asks one
    has_slip = 'class="receipt"' in html
    assert has_slip == (kind in RECEIPT_KINDS)
    if has_slip:
        assert "签字或按指印" in html and "签收日期" in html


def test_the_figures_appear_as_the_filters_format_them(renderer: NoticeRenderer) -> None:
    maturity = renderer.render(*SAMPLES["maturity_notice"])
    assert "30,180.00元" in maturity and "7.2%" in maturity and "2027年1月10日" in maturity
    assert "尚欠" not in maturity  # no arrears: no sentence about them
    owing = renderer.render(
        NoticeKind.MATURITY_NOTICE, {**SAMPLES["maturity_notice"][1], "arrears": D("180.05")}
    )
    assert "尚欠的180.05元" in owing
    borrower = renderer.render(*SAMPLES["overdue_notice"])
    assert (
        "您的欠款情况如下" in borrower and "保证责任" not in borrower and "借款人（签字" in borrower
    )
    guarantor = renderer.render(NoticeKind.OVERDUE_NOTICE, GUARANTOR_VARIANT)
    assert "李四（保证人）：" in guarantor and "借款人张大山于2026年1月10日" in guarantor
    assert "依约履行保证责任" in guarantor and "保证人（签字或按指印）" in guarantor
    assert "180.05元" in guarantor
    certificate = renderer.render(*SAMPLES["settlement_certificate"])
    assert "保证人李四对该笔贷款的保证责任自结清之日起解除" in certificate
    assert "抵押（质押）物" not in certificate
    agreement = renderer.render(*SAMPLES["extension_agreement"])
    assert "展期6个月，自2027年1月10日起至" in agreement and "7.5%" in agreement
    assert "丙方李四（签字或按指印）" in agreement and "一式3份" in agreement
    assert "138****5678" in agreement  # the reason's phone number, masked
    sheet = renderer.render(*SAMPLES["inspection_sheet"])
    assert "size: A4 landscape" in sheet and sheet.count("<tr>\n      <td>") == 3
    assert "村民委员会（盖章）" in sheet and "检查人（客户经理，签字）" in sheet


def test_text_is_escaped(renderer: NoticeRenderer) -> None:
    kind, context = SAMPLES["extension_agreement"]
    html = renderer.render(kind, {**context, "reason": "<script>alert(1)</script>"})
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variable_is_required(name: str, renderer: NoticeRenderer) -> None:
    """A missing variable raises: never a half-empty notice. The samples give exactly the
    variables the templates use (their own and the layout's)."""
    kind, context = VARIANTS[name]
    env = renderer._env
    used: set[str] = set()
    for template in ("_base.html.j2", f"{kind.value}.html.j2"):
        source = env.loader.get_source(env, template)[0]  # type: ignore[union-attr]
        used |= meta.find_undeclared_variables(env.parse(source))
    assert set(context) == used - {"title"}
    for missing in context:
        with pytest.raises(UndefinedError):
            renderer.render(kind, {k: v for k, v in context.items() if k != missing})


def _embedded_fonts(pdf: bytes) -> set[str]:
    """The fonts a PDF embeds (subset names without their tag), from its compressed objects."""
    found: set[str] = set()
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            text = zlib.decompress(stream)
        except zlib.error:
            continue
        found |= {m.decode() for m in re.findall(rb"/BaseFont\s*/[A-Z]{6}\+([^\s/]+)", text)}
    return found


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_pdf_is_produced(name: str, renderer: NoticeRenderer) -> None:
    pdf = render_pdf(renderer.render(*VARIANTS[name]))
    assert pdf.startswith(b"%PDF") and len(pdf) > 5_000
    # The Chinese text is set in the font scripts/system-packages.sh installs.
    assert "WenQuanYi-Micro-Hei" in _embedded_fonts(pdf)


@pytest.mark.parametrize("name", ["maturity_notice", "overdue_notice", "overdue_notice_guarantor"])
def test_a_notice_and_its_receipt_slip_fit_one_a4_page(name: str, renderer: NoticeRenderer) -> None:
    """The slip is torn off the notice itself: both on one page."""
    from weasyprint import HTML

    document = HTML(string=renderer.render(*VARIANTS[name])).render()
    assert len(document.pages) == 1


# ---------------------------------------------------------------- the NoticeBook (SQL)


def _book(sessions: SessionFactory) -> NoticeBook:
    with sessions() as session:
        if session.get(Branch, "PF01") is None:
            session.add(Branch(code="PF01", name="示范市二级分行", tier="prefecture"))
            session.flush()
            session.add(Branch(code="CB01", name="示范县支行", tier="county", parent_code="PF01"))
            session.add(Branch(code="CB02", name="东山县支行", tier="county", parent_code="PF01"))
            session.commit()
    return NoticeBook(sessions, NoticeRenderer(TEMPLATES), LAYOUT["cooperative_name"])


def _request(key: str, **changes: Any) -> NoticeRequest:
    kind, context = SAMPLES["overdue_notice"]
    layout_free = {k: v for k, v in context.items() if k not in LAYOUT}
    fields: dict[str, Any] = {
        "idempotency_key": key,
        "kind": kind,
        "branch_code": "CB01",
        "loan_id": BORROWER["loan_id"],
        "addressee": "张大山",
        "issued_on": date(2026, 6, 11),
        "issued_by": "workflow",
        "round_key": "LN20260110A1B2C3D4:notice:1",
        "context": layout_free,
    }
    return NoticeRequest(**{**fields, **changes})


def test_the_book_numbers_per_branch_and_year_once_per_key(sessions: SessionFactory) -> None:
    book = _book(sessions)
    first, new = book.issue(_request("k1"))
    assert new and first.number == "CB01-2026-000001"
    again, new = book.issue(_request("k1", addressee="someone else"))
    assert not new and again == first  # the same key: the notice as first issued
    second, _ = book.issue(_request("k2"))
    other_branch, _ = book.issue(_request("k3", branch_code="CB02"))
    next_year, _ = book.issue(_request("k4", issued_on=date(2027, 1, 4)))
    third, _ = book.issue(_request("k5"))
    assert [n.number for n in (second, other_branch, next_year, third)] == [
        "CB01-2026-000002",
        "CB02-2026-000001",
        "CB01-2027-000001",
        "CB01-2026-000003",
    ]
    # The kept HTML is the renderer's, with the book's number, heading and branch.
    stored = book.find("CB01-2026-000002")
    assert stored is not None and stored.receipt_required and stored.round_key
    kind, context = SAMPLES["overdue_notice"]
    expected = NoticeRenderer(TEMPLATES).render(kind, {**context, "number": "CB01-2026-000002"})
    assert stored.html == expected
    assert [n.number for n in book.of_loan(BORROWER["loan_id"])][:2] == [
        "CB01-2026-000001",
        "CB01-2026-000002",
    ]


def test_a_failed_rendering_uses_up_no_number(sessions: SessionFactory) -> None:
    book = _book(sessions)
    broken = _request("bad", context={"name": "张大山"})
    with pytest.raises(UndefinedError):
        book.issue(broken)
    with pytest.raises(UnknownBranch):
        book.issue(_request("nowhere", branch_code="XX99"))
    issued, _ = book.issue(_request("good"))
    assert issued.number == "CB01-2026-000001"  # gapless: the failure gave its number back
    with sessions() as session:
        assert len(session.exec(select(Notice)).all()) == 1


def test_concurrent_issuers_never_share_a_number(sessions: SessionFactory) -> None:
    """Threads issuing at once (a fresh year, so they also race to create its counter row):
    every number once, no gap, one notice per key however many times it is asked for."""
    book = _book(sessions)
    keys = [f"race-{n % 12}" for n in range(24)]  # each key asked for twice
    results: list[IssuedNotice] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def issue_some(mine: list[str]) -> None:
        start.wait()
        for key in mine:
            try:
                results.append(book.issue(_request(key))[0])
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=issue_some, args=(keys[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    by_key: dict[str, set[str]] = {}
    for notice in results:
        with sessions() as session:
            row = session.exec(select(Notice).where(Notice.number == notice.number)).one()
        by_key.setdefault(row.idempotency_key, set()).add(notice.number)
    assert all(len(numbers) == 1 for numbers in by_key.values())
    numbers = sorted(n for numbers in by_key.values() for n in numbers)
    assert numbers == [f"CB01-2026-{n:06d}" for n in range(1, 13)]
    with sessions() as session:
        counter = session.get(NoticeCounter, ("CB01", 2026))
        assert counter is not None and counter.last_number == 12


def test_a_receipt_is_marked_once_within_its_dates(sessions: SessionFactory) -> None:
    book = _book(sessions)
    notice, _ = book.issue(_request("k1"))
    today = date(2026, 6, 20)

    def refusal(received_on: date) -> RuleViolation:
        with pytest.raises(RuleViolation) as refused:
            book.mark_receipt(notice.number, received_on, "officer1", today)
        return refused.value

    early = refusal(date(2026, 6, 10))
    assert (early.rule, early.kind, early.refusals[0].field) == (
        "D-3",
        ViolationKind.INVALID,
        "received_on",
    )
    assert refusal(date(2026, 6, 21)).kind is ViolationKind.INVALID  # in the future
    assert notice.receipt == "awaited"
    marked = book.mark_receipt(notice.number, date(2026, 6, 11), "officer1", today)
    assert (marked.receipt, marked.receipt_returned_on, marked.receipt_recorded_by) == (
        "returned",
        date(2026, 6, 11),
        "officer1",
    )
    twice = refusal(date(2026, 6, 12))
    assert (twice.rule, twice.kind) == ("D-3", ViolationKind.CONFLICT)
    assert "officer1" in twice.refusals[0].message
    # A notice without a slip has no receipt to mark.
    kind, context = SAMPLES["settlement_certificate"]
    certificate, _ = book.issue(
        _request(
            "cert",
            kind=kind,
            round_key=None,
            issued_on=date(2026, 6, 11),
            context={k: v for k, v in context.items() if k not in LAYOUT},
        )
    )
    assert certificate.receipt == "none"
    with pytest.raises(RuleViolation) as no_slip:
        book.mark_receipt(certificate.number, date(2026, 6, 11), "officer1", today)
    assert (no_slip.value.rule, no_slip.value.kind) == ("P-7", ViolationKind.CONFLICT)


# ---------------------------------------------------------------- the issue_notice activity


def _register(sessions: SessionFactory, loan_id: str = "LN20260110A1B2C3D4") -> LoanRecord:
    record = LoanRecord(
        loan_id=loan_id,
        stage="repaying",
        branch_code="CB01",
        officer_username="officer1",
        applicant_name="张大山",
        id_number_masked="4101**********0010",
        phone_masked="138****5678",
        household_id="HH-410102-0001",
        village="前进村",
        purpose="livestock",
        guarantee_type="guarantee",
        repayment_method="interest_monthly",
        amount_requested_fen=3_000_000,
        amount_approved_fen=3_000_000,
        term_months=12,
        annual_rate="0.0720",
        policy_version="2026.1",
        applied_at=datetime(2026, 1, 5, 2, tzinfo=UTC),
        disbursed_at=datetime(2026, 1, 10, 2, tzinfo=UTC),
        maturity_date=date(2027, 1, 10),
    )
    with sessions() as session:
        session.add(record)
        session.commit()
    return record


def _activities(sessions: SessionFactory) -> NotificationActivities:
    return NotificationActivities(
        OutboxNotifier(sessions), TemplateRenderer(TEMPLATES), notices=_book(sessions)
    )


def _overdue_input(n: int, addressee: str) -> IssueNoticeInput:
    """As workflows/servicing.py _send_overdue_notices sends it (decimals as JSON strings)."""
    return IssueNoticeInput(
        idempotency_key=f"loan-LN20260110A1B2C3D4/notice-1/{n}",
        loan_id="LN20260110A1B2C3D4",
        recipient=addressee,
        template="overdue_notice",
        context={
            "name": "张大山",
            "loan_id": "LN20260110A1B2C3D4",
            "institution": "示范县农村信用合作联社",
            "notice_number": "LN20260110A1B2C3D4:notice:1",
            "addressee": addressee,
            "as_guarantor": n > 0,
            "issued_on": "2026-06-11",
            "overdue_since": "2026-06-10",
            "overdue_principal": "0.00",
            "overdue_interest": "180.00",
            "penalty": "0.05",
            "total": "180.05",
        },
    )


def test_issue_notice_issues_the_official_notice_and_a_print_row(
    sessions: SessionFactory,
) -> None:
    """D-2/D-3: the workflow's overdue notices, to the borrower and the guarantor, each
    numbered, kept with the round key and a receipt slip; the clerk's print row names it."""
    _register(sessions)
    activities = _activities(sessions)
    env = ActivityEnvironment()
    borrower = env.run(activities.issue_notice, _overdue_input(0, "张大山"))
    guarantor = env.run(activities.issue_notice, _overdue_input(1, "李四"))
    retried = env.run(activities.issue_notice, _overdue_input(1, "李四"))
    assert not borrower.already_sent and not guarantor.already_sent and retried.already_sent
    with sessions() as session:
        notices = session.exec(select(Notice).order_by(Notice.number)).all()  # type: ignore[arg-type]
        rows = session.exec(select(Notification)).all()
    assert [(n.number, n.addressee, n.round_key, n.receipt_required) for n in notices] == [
        ("CB01-2026-000001", "张大山", "LN20260110A1B2C3D4:notice:1", True),
        ("CB01-2026-000002", "李四", "LN20260110A1B2C3D4:notice:1", True),
    ]
    assert all(n.issued_on == date(2026, 6, 11) and n.issued_by == "workflow" for n in notices)
    html = notices[1].html
    assert "李四（保证人）：" in html and "4101**********0010" in html and "30,000.00元" in html
    assert [(r.channel, r.template, r.recipient_masked) for r in rows] == [
        ("print", "overdue_notice", "张大山"),
        ("print", "overdue_notice", "李四"),
    ]
    assert (
        rows[1].body
        == "请打印逾期贷款催收通知书（编号CB01-2026-000002）送达李四，回执签收后交回登记。"
    )


def test_issue_notice_settlement_certificate(sessions: SessionFactory) -> None:
    """P-7: as workflows/servicing.py _issue_certificate sends it; dated the day it closed."""
    _register(sessions)
    inp = IssueNoticeInput(
        idempotency_key="loan-LN20260110A1B2C3D4/settlement-certificate",
        loan_id="LN20260110A1B2C3D4",
        recipient="张大山",
        template="settlement_certificate",
        context={
            "name": "张大山",
            "loan_id": "LN20260110A1B2C3D4",
            "institution": "示范县农村信用合作联社",
            "amount": "30000.00",
            "disbursed_on": "2026-01-10",
            "closed_on": "2027-01-10",
            "principal": "30000.00",
            "interest": "2190.00",
            "penalty": "0.00",
            "guarantors": ["李四"],
            "collateral": [],
        },
    )
    ActivityEnvironment().run(_activities(sessions).issue_notice, inp)
    with sessions() as session:
        [notice] = session.exec(select(Notice)).all()
        [row] = session.exec(select(Notification)).all()
    assert (notice.number, notice.kind, notice.issued_on) == (
        "CB01-2027-000001",
        "settlement_certificate",
        date(2027, 1, 10),
    )
    assert not notice.receipt_required and "2,190.00元" in notice.html
    assert row.body == "请打印结清证明（编号CB01-2027-000001）送达张大山。"


def test_issue_notice_that_cannot_be_made_is_not_retried(sessions: SessionFactory) -> None:
    activities = _activities(sessions)
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError) as unknown_loan:
        env.run(activities.issue_notice, _overdue_input(0, "张大山"))
    assert unknown_loan.value.non_retryable and "not in the register" in str(unknown_loan.value)
    _register(sessions)
    missing = _overdue_input(0, "张大山")
    del missing.context["overdue_since"]
    with pytest.raises(ApplicationError) as undefined:
        env.run(activities.issue_notice, missing)
    assert undefined.value.non_retryable and "overdue_since" in str(undefined.value)
    with sessions() as session:
        assert session.exec(select(Notice)).all() == []
        assert session.exec(select(Notification)).all() == []
        assert session.exec(select(NoticeCounter)).all() == []


def test_register_particulars_are_masked_and_exact(sessions: SessionFactory) -> None:
    particulars = register_particulars(_register(sessions))
    assert particulars["amount"] == D("30000.00") and particulars["annual_rate"] == D("0.0720")
    assert particulars["disbursed_on"] == date(2026, 1, 10)  # the China date of the payout
    assert mask_pii(str(particulars)) == str(particulars)
