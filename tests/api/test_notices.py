"""Official notices (通知书) through HTTP: issued on demand, listed, read as HTML and PDF,
receipts marked; and an overdue notice's receipt going through the loan's workflow.

Rules: P-3 (maturity notice, interest reminder), X-5 (extension agreement), K-2 (village
inspection sheet), D-2/D-3 (overdue notices and their receipts), P-7, H-3 (no full ID or
phone number on paper), C-5 (notices kept as issued).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from temporalio.testing import WorkflowEnvironment

from adapters.notices import NoticeKind, NoticeRequest, register_particulars
from api.services import notices as notice_service
from domain.calendar import CHINA
from domain.errors import RuleViolation, ViolationKind
from domain.loan import Decision, DecisionOutcome, RepaymentMethod, Role
from domain.policy import load_policy
from settings import PROJECT_DIR, Settings
from store.db import make_engine, session_factory
from store.migrate import upgrade_database
from store.models import LoanRecord, Notice, Task
from tests.api.conftest import LoanApi, Login, china_today
from tests.samples import actor, application, application_data, forward, signing
from tests.temporal_env import start_time_skipping
from tests.workflows.conftest import LoanHarness, seed_branches
from tests.workflows.steps import disbursed, rows, spend_proceeds
from worker import ACTIVITY_THREADS, build_worker
from workflows.messages import (
    DecideLoan,
    RequestExtension,
    SignContract,
    SubmitReview,
    workflow_id_for,
)
from workflows.servicing import LoanServicingWorkflow


def _error(response: Any) -> dict[str, Any]:
    detail: dict[str, Any] = response.json()["detail"]
    return detail


async def _apply(loan_api: LoanApi, **overrides: Any) -> tuple[str, dict[str, Any]]:
    data = application_data(china_today(), **overrides)
    response = await loan_api.post("officer1", "/loans", data)
    assert response.status_code == 201, response.text
    return str(response.json()["loan_id"]), data


def _no_personal_data(text: str, data: dict[str, Any]) -> None:
    """H-3: neither the borrower's nor a guarantor's full ID or phone number."""
    people = [data["applicant"], *data["guarantors"]]
    for person in people:
        assert person["id_number"] not in text and person["phone"] not in text


async def test_notices_of_a_repaying_loan(loan_api: LoanApi, app: FastAPI) -> None:
    """P-3 on demand: the maturity notice (with a receipt slip) and the interest reminder;
    listed, read as HTML and PDF, the receipt marked once; every refusal with its rule."""
    loan_id, data = await _apply(loan_api)
    await loan_api.to_repaying(loan_id)
    year = china_today().year

    issued = await loan_api.post(
        "officer1", f"/loans/{loan_id}/notices", {"kind": "maturity_notice"}
    )
    assert issued.status_code == 201, issued.text
    maturity = issued.json()
    assert maturity["number"] == f"CB01-{year}-000001"
    assert (maturity["kind"], maturity["addressee"], maturity["receipt"]) == (
        "maturity_notice",
        "张大山",
        "awaited",
    )
    assert (maturity["issued_on"], maturity["issued_by"]) == (str(china_today()), "officer1")
    # The same occasion again: the notice first issued, no new number.
    again = await loan_api.post(
        "head1", f"/loans/{loan_id}/notices", {"kind": "maturity_notice", "addressee": "张大山"}
    )
    assert again.status_code == 200 and again.json()["number"] == maturity["number"]
    reminder = await loan_api.post(
        "manager1", f"/loans/{loan_id}/notices", {"kind": "interest_reminder"}
    )
    assert reminder.status_code == 201, reminder.text
    assert (reminder.json()["number"], reminder.json()["receipt"]) == (
        f"CB01-{year}-000002",
        "none",
    )

    listed = await loan_api.get("auditor1", f"/loans/{loan_id}/notices")
    assert listed.status_code == 200
    assert [(n["number"], n["kind"], n["receipt"]) for n in listed.json()] == [
        (maturity["number"], "maturity_notice", "awaited"),
        (reminder.json()["number"], "interest_reminder", "none"),
    ]

    # The notice as printed: HTML, A4, the cooperative's heading and the branch, masked.
    page = await loan_api.get("auditor1", f"/notices/{maturity['number']}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<h1>贷款到期通知书</h1>" in html and f"编号：{maturity['number']}" in html
    assert "示范县农村信用合作联社" in html and "示范县支行（盖章）" in html
    assert "30,000.00元" in html and "7.2%" in html and "回执" in html
    assert "****5678" in html and "138****5678" in html  # account and phone, masked
    _no_personal_data(html, data)
    assert "default-src 'none'" in page.headers["content-security-policy"]
    interest = (await loan_api.get("officer1", f"/notices/{reminder.json()['number']}")).text
    assert "<h1>提示付息通知书</h1>" in interest and "第1期（共12期）" in interest
    _no_personal_data(interest, data)

    pdf = await loan_api.get("officer1", f"/notices/{maturity['number']}.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert f'filename="{maturity["number"]}.pdf"' in pdf.headers["content-disposition"]

    # The receipt slip comes back: a loan officer marks it once, dated issue..today.
    number = maturity["number"]
    path = f"/notices/{number}/receipt"
    today = china_today()
    by_auditor = await loan_api.post("auditor1", path, {"received_on": str(today)})
    assert by_auditor.status_code == 403
    for bad, reason in (
        (today + timedelta(days=1), "in the future"),
        (today - timedelta(days=1), "before notice"),
    ):
        refused = await loan_api.post("officer1", path, {"received_on": str(bad)})
        assert refused.status_code == 422, refused.text
        assert (_error(refused)["rule"], _error(refused)["errors"][0]["field"]) == (
            "P-3",
            "received_on",
        )
        assert reason in _error(refused)["message"]
    garbled = await loan_api.post("officer1", path, {"received_on": "2026-02-30"})
    assert garbled.status_code == 422 and _error(garbled)["errors"][0]["field"] == "received_on"
    no_slip = await loan_api.post(
        "officer1", f"/notices/{reminder.json()['number']}/receipt", {"received_on": str(today)}
    )
    assert no_slip.status_code == 409 and _error(no_slip)["rule"] == "P-3"
    marked = await loan_api.post("officer1", path, {"received_on": str(today)})
    assert marked.status_code == 200, marked.text
    assert (marked.json()["receipt"], marked.json()["receipt_recorded_by"]) == (
        "returned",
        "officer1",
    )
    twice = await loan_api.post("officer2", path, {"received_on": str(today)})
    assert twice.status_code == 409 and _error(twice)["rule"] == "P-3"
    listed = await loan_api.get("officer1", f"/loans/{loan_id}/notices")
    assert listed.json()[0]["receipt_returned_on"] == str(today)

    # Notices that do not fit the loan, or are not staff's to issue: refused with the rule.
    async def refusal(body: dict[str, Any], username: str = "officer1") -> tuple[int, Any]:
        response = await loan_api.post(username, f"/loans/{loan_id}/notices", body)
        return response.status_code, _error(response)["rule"]

    assert await refusal({"kind": "extension_agreement"}) == (409, "X-5")
    assert await refusal({"kind": "overdue_notice"}) == (409, "D-2")
    assert await refusal({"kind": "settlement_certificate"}) == (409, "P-7")
    assert await refusal({"kind": "inspection_sheet"}) == (422, "K-2")
    assert await refusal({"kind": "maturity_notice", "addressee": "李四"}) == (422, "P-3")
    assert await refusal({"kind": "maturity_notice"}, "auditor1") == (403, None)
    assert await refusal({"kind": "maturity_notice"}, "teller1") == (403, None)
    unknown_kind = await loan_api.post("officer1", f"/loans/{loan_id}/notices", {"kind": "memo"})
    assert unknown_kind.status_code == 422 and _error(unknown_kind)["errors"][0]["field"] == "kind"

    # Unknown loans and numbers: 404; another branch's: 403; a malformed number: 422.
    unknown = await loan_api.post(
        "officer1", "/loans/LN20260101DEADBEEF/notices", {"kind": "maturity_notice"}
    )
    assert unknown.status_code == 404, unknown.text
    assert (await loan_api.get("officer1", "/loans/LN20260101DEADBEEF/notices")).status_code == 404
    assert (await loan_api.get("officer1", "/notices/CB01-2026-999999")).status_code == 404
    assert (await loan_api.get("officer1", "/notices/CB01-2026-999999.pdf")).status_code == 404
    assert (await loan_api.get("officer1", "/notices/not-a-number")).status_code == 422
    missing = await loan_api.post(
        "officer1", "/notices/CB01-2026-999999/receipt", {"received_on": str(today)}
    )
    assert missing.status_code == 404
    for foreign in (f"/notices/{number}", f"/notices/{number}.pdf", f"/loans/{loan_id}/notices"):
        assert (await loan_api.get("officer3", foreign)).status_code == 403, foreign
    foreign_issue = await loan_api.post(
        "officer3", f"/loans/{loan_id}/notices", {"kind": "maturity_notice"}
    )
    assert foreign_issue.status_code == 403
    assert len((await loan_api.get("officer1", f"/loans/{loan_id}/notices")).json()) == 2


async def test_an_extension_agreement_for_an_approved_extension(
    loan_api: LoanApi, temporal_dev_env: WorkflowEnvironment
) -> None:
    """X-5: the agreement of an extension approved on the original's route (X-4), with the
    guarantor as a party, issued before signing; reprinted as it was once signed."""
    loan_id, data = await _apply(loan_api)
    await loan_api.to_repaying(loan_id)
    handle = temporal_dev_env.client.get_workflow_handle(workflow_id_for(loan_id))
    await handle.execute_update(
        LoanServicingWorkflow.request_extension,
        RequestExtension(
            actor=actor("officer1"),
            months=6,
            reason="生猪价格下跌，延后出栏",
            guarantor_consent=True,
        ),
    )
    pending = await loan_api.post(
        "officer1", f"/loans/{loan_id}/notices", {"kind": "extension_agreement"}
    )
    assert pending.status_code == 409 and _error(pending)["rule"] == "X-5"  # not approved yet
    await handle.execute_update(
        LoanServicingWorkflow.review_loan,
        SubmitReview(actor=actor("reviewer1"), review=forward()),
    )
    # 18 months from the current period to the new maturity: installments (E-14, X-6).
    decision = Decision(
        outcome=DecisionOutcome.APPROVE,
        amount=Decimal("30000"),
        term_months=6,
        annual_rate=Decimal("0.0750"),
        repayment_method=RepaymentMethod.EQUAL_INSTALLMENT,
    )
    await handle.execute_update(
        LoanServicingWorkflow.decide_loan, DecideLoan(actor=actor("approver1"), decision=decision)
    )

    issued = await loan_api.post(
        "officer1", f"/loans/{loan_id}/notices", {"kind": "extension_agreement"}
    )
    assert issued.status_code == 201, issued.text
    agreement = issued.json()
    assert (agreement["kind"], agreement["receipt"]) == ("extension_agreement", "none")
    html = (await loan_api.get("officer1", f"/notices/{agreement['number']}")).text
    assert "<h1>借款展期协议</h1>" in html and "HT-2026-0001" in html
    assert "展期6个月" in html and "7.5%" in html and "等额本息" in html
    assert "丙方李四（签字或按指印）" in html  # the guarantor signs too
    guarantor_id = data["guarantors"][0]["id_number"]
    assert f"{guarantor_id[:4]}**********{guarantor_id[-4:]}" in html
    _no_personal_data(html, data)

    await handle.execute_update(
        LoanServicingWorkflow.sign_contract,
        SignContract(actor=actor("officer1"), signing=signing(china_today())),
    )
    reprint = await loan_api.post(
        "officer1", f"/loans/{loan_id}/notices", {"kind": "extension_agreement"}
    )
    assert reprint.status_code == 200 and reprint.json()["number"] == agreement["number"]
    # Signed into installments now: no maturity notice for it (P-3); interest reminders go on.
    maturity = await loan_api.post(
        "officer1", f"/loans/{loan_id}/notices", {"kind": "maturity_notice"}
    )
    assert maturity.status_code == 409 and _error(maturity)["rule"] == "P-3"
    assert "installment" in _error(maturity)["message"]
    reminder = await loan_api.post(
        "officer1", f"/loans/{loan_id}/notices", {"kind": "interest_reminder"}
    )
    assert reminder.status_code == 201, reminder.text


def _insert_loan(app: FastAPI, loan_id: str, village: str, branch: str, phone: str) -> None:
    with app.state.sessions() as session:
        session.add(
            LoanRecord(
                loan_id=loan_id,
                stage="repaying",
                branch_code=branch,
                officer_username="officer1",
                applicant_name=f"{village}户主" + "甲乙丙丁戊"[int(loan_id[-1]) - 1],
                id_number_masked="4101**********0010",
                phone_masked=phone,
                household_id=f"HH-{loan_id}",
                village=village,
                purpose="crop",
                guarantee_type="credit",
                repayment_method="lump_sum",
                amount_requested_fen=500_000,
                term_months=12,
                policy_version="2026.1",
                applied_at=datetime.now(UTC),
            )
        )
        session.add(
            Task(
                task_key=f"{loan_id}:inspection:1",
                loan_id=loan_id,
                kind="village_inspection",
                role=Role.LOAN_OFFICER.value,
                branch_code=branch,
                due_date=china_today() + timedelta(days=10),
            )
        )
        session.commit()


async def test_a_village_inspection_sheet(app: FastAPI, http: AsyncClient, login: Login) -> None:
    """K-2: one sheet per village listing its households' due checks, for the branch; the
    same households give the same sheet; it has no receipt slip."""
    _insert_loan(app, "LNSHEET1", "前进村", "CB01", "138****1111")
    _insert_loan(app, "LNSHEET2", "前进村", "CB01", "139****2222")
    _insert_loan(app, "LNSHEET3", "东岗村", "CB01", "137****3333")
    _insert_loan(app, "LNSHEET4", "前进村", "CB02", "136****4444")  # another branch's
    officer = await login("officer1")

    issued = await http.post("/inspections/villages/前进村/sheet", headers=officer)
    assert issued.status_code == 201, issued.text
    sheet = issued.json()
    assert (sheet["kind"], sheet["addressee"], sheet["loan_id"], sheet["receipt"]) == (
        "inspection_sheet",
        "前进村",
        None,
        "none",
    )
    again = await http.post("/inspections/villages/前进村/sheet", headers=await login("head1"))
    assert again.status_code == 200 and again.json()["number"] == sheet["number"]

    html = (await http.get(f"/notices/{sheet['number']}", headers=officer)).text
    assert "<h1>贷后检查表</h1>" in html and "size: A4 landscape" in html
    assert "前进村户主甲" in html and "前进村户主乙" in html and "138****1111" in html
    assert "东岗村" not in html and "136****4444" not in html
    assert "村民委员会（盖章）" in html and "检查人（客户经理，签字）" in html

    listed = await http.get("/inspections/villages/前进村/sheets", headers=officer)
    assert [s["number"] for s in listed.json()] == [sheet["number"]]
    foreign = await http.get("/inspections/villages/前进村/sheets", headers=await login("officer3"))
    assert foreign.status_code == 200 and foreign.json() == []

    none_due = await http.post("/inspections/villages/后山村/sheet", headers=officer)
    assert none_due.status_code == 409 and _error(none_due)["rule"] == "K-2"
    by_auditor = await http.post(
        "/inspections/villages/前进村/sheet", headers=await login("auditor1")
    )
    assert by_auditor.status_code == 403 and _error(by_auditor)["rule"] == "K-2"
    receipt = await http.post(
        f"/notices/{sheet['number']}/receipt",
        headers=officer,
        json={"received_on": str(china_today())},
    )
    assert receipt.status_code == 409 and _error(receipt)["rule"] == "K-2"

    # Another household's check falls due: a new sheet with a new number.
    _insert_loan(app, "LNSHEET5", "前进村", "CB01", "135****5555")
    renewed = await http.post("/inspections/villages/前进村/sheet", headers=officer)
    assert renewed.status_code == 201 and renewed.json()["number"] != sheet["number"]
    assert (
        "135****5555"
        in (await http.get(f"/notices/{renewed.json()['number']}", headers=officer)).text
    )


async def test_an_overdue_notice_receipt_the_workflow_refuses_is_not_marked(
    loan_api: LoanApi, app: FastAPI, api_settings: Settings
) -> None:
    """D-3: an overdue notice's receipt is the workflow's to accept first; refused there (no
    such round awaits a receipt), the notice stays unmarked."""
    loan_id, _ = await _apply(loan_api)
    await loan_api.to_repaying(loan_id)
    book = notice_service.notice_book(app.state.sessions, api_settings)
    with app.state.sessions() as session:
        record = session.get(LoanRecord, loan_id)
        assert record is not None
    notice, _ = book.issue(
        NoticeRequest(
            idempotency_key=f"test/{loan_id}/notice",
            kind=NoticeKind.OVERDUE_NOTICE,
            branch_code="CB01",
            loan_id=loan_id,
            addressee="张大山",
            issued_on=china_today(),
            issued_by="workflow",
            round_key=f"{loan_id}:notice:1",
            context={
                **register_particulars(record),
                "as_guarantor": False,
                "overdue_since": china_today(),
                "overdue_principal": "0.00",
                "overdue_interest": "180.00",
                "penalty": "0.00",
                "total": "180.00",
            },
        )
    )
    refused = await loan_api.post(
        "officer1", f"/notices/{notice.number}/receipt", {"received_on": str(china_today())}
    )
    assert refused.status_code == 409 and _error(refused)["rule"] == "D-3"
    assert "awaits a receipt" in _error(refused)["message"]
    [listed] = (await loan_api.get("officer1", f"/loans/{loan_id}/notices")).json()
    assert listed["receipt"] == "awaited"


# ---------------------------------------------------------------- on the time-skipping server


@pytest.fixture
async def overdue_loans(tmp_path: Path) -> AsyncIterator[tuple[LoanHarness, Settings]]:
    """A loan worker on the time-skipping server (months pass in seconds), with a read model
    that has the branches, for a loan that really falls overdue."""
    env = await start_time_skipping()
    url = f"sqlite:///{tmp_path / 'readmodel.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    seed_branches(sessions)
    settings = Settings(
        environment="test", database_url=url, task_queue=f"notices-{uuid.uuid4().hex[:8]}"
    )
    policy = load_policy(PROJECT_DIR / "policy" / "loanflow-2026.1.toml")
    try:
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            async with build_worker(env.client, sessions, settings, executor):
                yield LoanHarness(env, settings.task_queue, sessions, policy), settings
    finally:
        engine.dispose()
        await env.shutdown()


async def test_an_overdue_notice_receipt_goes_through_the_workflow(
    overdue_loans: tuple[LoanHarness, Settings],
) -> None:
    """D-2/D-3 end to end: the first installment unpaid, the workflow issues the numbered
    notices to borrower and guarantor; the borrower's signed slip is recorded by the
    workflow's step, then marked; the guarantor's slip of the same round is marked without a
    second step; a second marking is refused."""
    loans, settings = overdue_loans
    today = await loans.today()
    app = application(today)
    handle, status = await disbursed(loans, app)
    spend_proceeds(loans.sessions, status, app.applicant.settlement_account)  # nothing to debit
    first = status.schedule[0]
    day1 = first.due_date + timedelta(days=1)
    noon = datetime.combine(day1, time(12), CHINA)
    await loans.env.sleep(noon - await loans.env.get_current_time())
    await loans.eventually(lambda: len(rows(loans, Notice, loan_id=status.loan_id)) == 2)
    notices = {n.addressee: n for n in rows(loans, Notice, loan_id=status.loan_id)}
    borrower, guarantor = notices["张大山"], notices["李四"]
    assert [borrower.number, guarantor.number] == [
        f"CB01-{day1.year}-000001",
        f"CB01-{day1.year}-000002",
    ]
    assert borrower.issued_on == day1 and borrower.round_key == f"{status.loan_id}:notice:1"
    assert guarantor.round_key == borrower.round_key and "李四（保证人）" in guarantor.html

    book = notice_service.notice_book(loans.sessions, settings)
    officer = actor("officer1")
    with loans.sessions() as session:
        marked = await notice_service.record_receipt(
            session, loans.client, book, officer, borrower.number, day1
        )
    assert (marked.receipt, marked.receipt_returned_on) == ("returned", day1)
    view = (await handle.query(LoanServicingWorkflow.status)).servicing
    assert view is not None and view.notices[0].receipt_on == day1  # the workflow's D-3 fact

    with loans.sessions() as session:
        sibling = await notice_service.record_receipt(
            session, loans.client, book, officer, guarantor.number, day1
        )
        assert sibling.receipt == "returned"
        with pytest.raises(RuleViolation) as twice:
            await notice_service.record_receipt(
                session, loans.client, book, officer, borrower.number, day1
            )
    assert (twice.value.rule, twice.value.kind) == ("D-3", ViolationKind.CONFLICT)
