"""The staff pages over HTTP: sign-in, my tasks, a task's form, the register, the loan page.

These go through the real app, a real Temporal dev server and a worker, as a browser would,
with the session cookie and the forms' CSRF token; tests/api/test_web_browser.py drives the
same pages in Chromium.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from typing import Any

from httpx import AsyncClient, Response

from api.services.users import DEV_PASSWORD
from tests.api.conftest import LoanApi, china_today
from tests.samples import application_data, report_data


async def sign_in(http: AsyncClient, username: str, password: str = DEV_PASSWORD) -> Response:
    http.cookies.clear()
    return await http.post(
        "/ui/login", data={"username": username, "password": password, "next": "/ui/tasks"}
    )


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden {name} in the page"
    return found.group(1)


def task_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-task-id="(\d+)"', page)]


def investigation_form(page: str) -> dict[str, Any]:
    report = report_data()
    form: dict[str, Any] = {
        "csrf": hidden(page, "csrf"),
        "request_id": hidden(page, "request_id"),
        "recommendation": "approve",
        "amount": "30000",
        "term_months": "12",
        "annual_rate": "7.2",
    }
    for name, value in report.items():
        if isinstance(value, bool):
            if value:
                form[name] = "on"
        elif name not in form and value is not None:
            form[name] = str(value)
    return form


async def open_task(http: AsyncClient, kind_label: str) -> tuple[int, str]:
    """The first task of my inbox with this label, and its page."""
    inbox = (await http.get("/ui/tasks")).text
    found = re.search(rf'href="/ui/tasks/(\d+)">{kind_label}<', inbox)
    assert found, f"no {kind_label} task in the inbox:\n{inbox[-2000:]}"
    task_id = int(found.group(1))
    page = await http.get(f"/ui/tasks/{task_id}")
    assert page.status_code == 200, page.text
    return task_id, page.text


async def test_sign_in_gives_no_hint_and_slows_repeated_failures(
    http: AsyncClient, seeded_users: object
) -> None:
    wrong_password = await sign_in(http, "officer1", "not-the-password")
    unknown_user = await sign_in(http, "nobody", "not-the-password")
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert "用户名或密码错误" in wrong_password.text and "用户名或密码错误" in unknown_user.text
    for _ in range(3):  # the fourth failure in a row starts the wait
        await sign_in(http, "officer1", "still-wrong")
    slowed = await sign_in(http, "officer1", DEV_PASSWORD)  # right, but must wait now
    assert slowed.status_code == 429
    assert "秒后再试" in slowed.text
    assert "loanflow_session" not in http.cookies


async def test_pages_need_a_session_and_come_back_after_sign_in(
    http: AsyncClient, seeded_users: object
) -> None:
    http.cookies.clear()
    page = await http.get("/ui/register?stage=repaying")
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?next=/ui/register%3Fstage%3Drepaying"
    signed_in = await http.post(
        "/ui/login",
        data={"username": "head1", "password": DEV_PASSWORD, "next": "/ui/register?stage=repaying"},
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/ui/register?stage=repaying"
    # A "next" outside our pages is never followed (no open redirect).
    elsewhere = await http.post(
        "/ui/login",
        data={"username": "head1", "password": DEV_PASSWORD, "next": "https://evil.example/"},
    )
    assert elsewhere.headers["location"] == "/ui/tasks"


async def test_an_investigation_completed_from_its_page_goes_to_the_workflow_once(
    http: AsyncClient, loan_api: LoanApi
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    await sign_in(http, "officer1")
    task_id, page = await open_task(http, "贷前调查")
    assert loan_id in page and "张大山" in page
    assert "13812345678" not in page  # H-3: the phone is masked on the page

    form = investigation_form(page)
    first = await http.post(f"/ui/tasks/{task_id}", data=form)
    assert first.status_code == 303, first.text
    assert first.headers["location"] == f"/ui/tasks?done={loan_id}"
    # The same form submitted again (a double click, a resend): one report, no error.
    again = await http.post(f"/ui/tasks/{task_id}", data=form)
    assert again.status_code == 303, again.text
    detail = (await loan_api.get("officer1", f"/loans/{loan_id}")).json()
    assert detail["workflow"]["investigators_reported"] == ["officer1"]
    audit = (await loan_api.get("auditor1", f"/loans/{loan_id}/audit")).json()
    assert [e["step"] for e in audit].count("submit_investigation") == 1


async def test_a_refused_step_is_shown_next_to_the_form_and_changes_nothing(
    http: AsyncClient, loan_api: LoanApi
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    await sign_in(http, "officer1")
    task_id, page = await open_task(http, "贷前调查")

    missing = investigation_form(page)
    del missing["amount"]
    refused = await http.post(f"/ui/tasks/{task_id}", data=missing)
    assert refused.status_code == 422
    assert "a recommendation to lend states amount" in refused.text
    assert 'value="7.2"' in refused.text  # what was typed stays in the form

    # The workflow's own validator refuses the borrower's interview unconfirmed (I-1).
    unconfirmed = investigation_form(page)
    del unconfirmed["interview_confirmed_by_borrower"]
    refused = await http.post(f"/ui/tasks/{task_id}", data=unconfirmed)
    assert refused.status_code in (409, 422), refused.text
    assert "I-1" in refused.text
    assert 'class="refusal"' in refused.text
    detail = (await loan_api.get("officer1", f"/loans/{loan_id}")).json()
    assert detail["workflow"]["investigators_reported"] == []


async def test_another_branchs_task_is_refused_403_and_an_unknown_one_404(
    http: AsyncClient, loan_api: LoanApi
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    await sign_in(http, "officer1")
    task_id, page = await open_task(http, "贷前调查")
    form = investigation_form(page)

    await sign_in(http, "officer3")  # a loan officer of CB02
    assert task_id not in task_ids((await http.get("/ui/tasks")).text)
    foreign = await http.get(f"/ui/tasks/{task_id}")
    assert foreign.status_code == 403
    assert "不是您的任务" in foreign.text
    form["csrf"] = hidden((await http.get("/ui/tasks")).text, "csrf")
    posted = await http.post(f"/ui/tasks/{task_id}", data=form)
    assert posted.status_code == 403
    assert (await http.get("/ui/tasks/999999")).status_code == 404
    assert (await http.get("/ui/loans/NO-SUCH-LOAN")).status_code == 404
    assert (await http.get(f"/ui/loans/{loan_id}")).status_code == 403


async def test_a_form_without_the_sessions_csrf_token_is_refused(
    http: AsyncClient, loan_api: LoanApi
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    await sign_in(http, "officer1")
    task_id, page = await open_task(http, "贷前调查")
    form = investigation_form(page)
    form["csrf"] = "forged"
    posted = await http.post(f"/ui/tasks/{task_id}", data=form)
    assert posted.status_code == 403
    detail = (await loan_api.get("officer1", f"/loans/{loan_id}")).json()
    assert detail["workflow"]["investigators_reported"] == []


async def test_the_register_filters_masks_and_exports_csv(
    http: AsyncClient, loan_api: LoanApi
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    await sign_in(http, "officer1")
    page = await http.get("/ui/register", params={"stage": "investigation"})
    assert page.status_code == 200
    assert loan_id in page.text and "4101**********" in page.text
    none = await http.get("/ui/register", params={"stage": "repaying"})
    assert loan_id not in none.text

    exported = await http.get("/ui/register.csv", params={"stage": "investigation"})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    (row,) = [r for r in rows if r["贷款编号"] == loan_id]
    assert row["身份证号"].startswith("4101") and "*" in row["身份证号"]
    assert row["电话"] == "138****5678"
    assert row["申请金额"] == "30000.00"

    await sign_in(http, "officer3")  # CB02 sees none of CB01's loans
    assert loan_id not in (await http.get("/ui/register")).text


async def test_the_auditor_reads_the_loan_and_its_trail_and_has_no_forms(
    http: AsyncClient, loan_api: LoanApi
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.investigate(loan_id)
    await sign_in(http, "auditor1")
    page = await http.get(f"/ui/loans/{loan_id}")
    assert page.status_code == 200
    assert "审计记录" in page.text and "submit_investigation" in page.text
    assert '<form method="post" action="/ui/loans' not in page.text
    exported = await http.get(f"/ui/loans/{loan_id}/audit.csv")
    assert exported.status_code == 200 and "submit_investigation" in exported.text
    as_json = await http.get(f"/ui/loans/{loan_id}/audit.json")
    assert [e["step"] for e in as_json.json()].count("submit_investigation") == 2
    review_task = (await http.get("/ui/tasks")).text
    assert "稽核岗只读" in review_task

    await sign_in(http, "officer1")  # I-1: officers never read the trail
    assert (await http.get(f"/ui/loans/{loan_id}/audit.csv")).status_code == 403
    assert "审计记录" not in (await http.get(f"/ui/loans/{loan_id}")).text


async def test_a_teller_takes_a_payment_from_the_loan_page(
    http: AsyncClient, loan_api: LoanApi
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.to_repaying(loan_id)
    await sign_in(http, "teller1")
    page = (await http.get(f"/ui/loans/{loan_id}")).text
    assert "柜面还款" in page
    form = {
        "csrf": hidden(page, "csrf"),
        "request_id": hidden(page, "request_id"),
        "amount": "1.234",
        "reference": "SK-0001",
    }
    refused = await http.post(f"/ui/loans/{loan_id}/actions/payment", data=form)
    assert refused.status_code == 422
    assert "decimal" in refused.text.lower()
    form["amount"] = "500.00"
    taken = await http.post(f"/ui/loans/{loan_id}/actions/payment", data=form)
    assert taken.status_code == 303, taken.text
    again = await http.post(f"/ui/loans/{loan_id}/actions/payment", data=form)
    assert again.status_code == 303
    detail = (await loan_api.get("teller1", f"/loans/{loan_id}")).json()
    assert detail["workflow"]["servicing"]["payments"] == 1


async def test_a_notice_issued_and_its_receipt_recorded_from_the_loan_page(
    http: AsyncClient, loan_api: LoanApi
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.to_repaying(loan_id)
    await sign_in(http, "officer1")
    page = (await http.get(f"/ui/loans/{loan_id}")).text
    csrf = hidden(page, "csrf")
    issued = await http.post(
        f"/ui/loans/{loan_id}/notices", data={"csrf": csrf, "kind": "maturity_notice"}
    )
    assert issued.status_code == 303
    number = issued.headers["location"].removeprefix("/notices/")
    notice = await http.get(f"/notices/{number}")  # the session opens the document
    assert notice.status_code == 200 and "贷款到期通知书" in notice.text
    pdf = await http.get(f"/notices/{number}.pdf")
    assert pdf.content.startswith(b"%PDF")

    # Only the borrower's P-3 notices are issued here: a settlement certificate is refused.
    refused = await http.post(
        f"/ui/loans/{loan_id}/notices", data={"csrf": csrf, "kind": "settlement_certificate"}
    )
    assert refused.status_code == 409 and "P-7" in refused.text

    page = (await http.get(f"/ui/loans/{loan_id}")).text
    assert "待收回" in page
    future = await http.post(
        f"/ui/notices/{number}/receipt", data={"csrf": csrf, "received_on": "2099-01-01"}
    )
    assert future.status_code == 422 and 'class="refusal"' in future.text
    returned = await http.post(
        f"/ui/notices/{number}/receipt",
        data={"csrf": csrf, "received_on": china_today().isoformat()},
    )
    assert returned.status_code == 303
    assert returned.headers["location"] == f"/ui/loans/{loan_id}?done=receipt"
    page = (await http.get(returned.headers["location"])).text
    assert "已登记回执" in page and "已收回" in page
    twice = await http.post(
        f"/ui/notices/{number}/receipt",
        data={"csrf": csrf, "received_on": china_today().isoformat()},
    )
    assert twice.status_code == 409
    unknown = await http.post(
        "/ui/notices/CB01-2026-999999/receipt", data={"csrf": csrf, "received_on": "2026-01-01"}
    )
    assert unknown.status_code == 404


def application_form(page: str, today: date, **changes: str) -> dict[str, Any]:
    data = application_data(today)
    applicant, guarantor = data["applicant"], data["guarantors"][0]
    form: dict[str, Any] = {
        "csrf": hidden(page, "csrf"),
        "request_id": hidden(page, "request_id"),
        **{f"applicant.{k}": str(v) for k, v in applicant.items() if not isinstance(v, bool)},
        "applicant.fixed_residence": "on",
        "applicant.full_civil_capacity": "on",
        **{f"guarantors.0.{k}": v for k, v in guarantor.items()},
        "household_annual_income": data["household_annual_income"],
        "amount": data["amount"],
        "term_months": str(data["term_months"]),
        "purpose": data["purpose"],
        "repayment_method": data["repayment_method"],
        "guarantee_type": data["guarantee_type"],
        "credit_rating.score": "85",
        "credit_rating.rated_on": today.isoformat(),
        "materials": data["materials"],
    }
    form.update(changes)
    return form


async def test_an_officer_takes_an_application_from_the_page(
    http: AsyncClient, loan_api: LoanApi
) -> None:
    await sign_in(http, "officer1")
    page = (await http.get("/ui/applications/new")).text
    today = china_today()

    bad_phone = application_form(page, today, **{"applicant.phone": "1381234"})
    refused = await http.post("/ui/applications", data=bad_phone)
    assert refused.status_code == 422
    assert 'data-field="applicant.phone"' in refused.text
    assert refused.text.index('class="error"') > refused.text.index('data-field="applicant.phone"')

    taken = await http.post("/ui/applications", data=application_form(page, today))
    assert taken.status_code == 303, taken.text
    loan_id = taken.headers["location"].removeprefix("/ui/tasks?applied=")
    detail = await loan_api.wait_for_stage(loan_id, "investigation")
    assert detail["loan"]["officer"] == "officer1"
    assert detail["workflow"]["amount_requested"] == "30000"

    await sign_in(http, "reviewer1")  # only loan officers take applications
    assert (await http.get("/ui/applications/new")).status_code == 403


async def test_an_extension_requested_and_decided_on_the_pages(
    http: AsyncClient, loan_api: LoanApi
) -> None:
    """X-1 on the loan page, then X-4: the original route's review and decision tasks."""
    loan_id = await loan_api.apply()
    await loan_api.to_repaying(loan_id)
    await sign_in(http, "officer1")
    page = (await http.get(f"/ui/loans/{loan_id}")).text
    form = {"csrf": hidden(page, "csrf"), "request_id": hidden(page, "request_id")}
    no_consent = {**form, "months": "6", "reason": "生猪价格下跌，延后出栏"}
    refused = await http.post(f"/ui/loans/{loan_id}/actions/extension", data=no_consent)
    assert refused.status_code in (409, 422) and "X-1" in refused.text
    asked = {**no_consent, "guarantor_consent": "on", "request_id": "extension-1"}
    assert (
        await http.post(f"/ui/loans/{loan_id}/actions/extension", data=asked)
    ).status_code == 303

    await sign_in(http, "reviewer1")
    task_id, page = await open_task(http, "审查")
    review = {
        "csrf": hidden(page, "csrf"),
        "request_id": hidden(page, "request_id"),
        "outcome": "forward",
        "comment": "展期理由属实，保证人同意",
    }
    assert (await http.post(f"/ui/tasks/{task_id}", data=review)).status_code == 303

    await sign_in(http, "approver1")
    task_id, page = await open_task(http, "审批")
    decision = {
        "csrf": hidden(page, "csrf"),
        "request_id": hidden(page, "request_id"),
        "outcome": "approve",
        "amount": "30000",
        "term_months": "6",
        "annual_rate": "7.5",
        "repayment_method": "equal_installment",
    }
    decided = await http.post(f"/ui/tasks/{task_id}", data=decision)
    assert decided.status_code == 303, decided.text
    detail = (await loan_api.get("officer1", f"/loans/{loan_id}")).json()
    [extension] = detail["workflow"]["servicing"]["extensions"]
    assert (extension["outcome"], extension["months"]) == ("approved", 6)
    assert [(s["actor"], s["outcome"]) for s in extension["steps"]] == [
        ("reviewer1", "forward"),
        ("approver1", "approve"),
    ]
