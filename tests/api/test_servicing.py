"""Post-loan management (贷后管理) through HTTP: counter payments, checks, warnings, class.

The dev server runs in real time, so no due date arrives here; servicing over months is
tested on the time-skipping server (tests/workflows). These tests drive loans to
repayment with the real worker and take the steps staff take on the first day.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

import manage
from api.security import hash_password
from api.services import servicing
from api.services.users import DEV_PASSWORD
from domain.loan import Actor, Role
from settings import Settings
from store.models import LoanRecord, StaffUser, Task
from tests.api.conftest import LoanApi, Login, china_today
from tests.samples import application_data

FINDINGS = {
    "purpose_kept": True,
    "business_normal": True,
    "household_income": "养殖收入稳定，存栏生猪45头",
    "health": "家庭成员身体健康",
    "marriage": "已婚，家庭和睦",
    "contact_details_current": True,
}


PAY = {"amount": "100", "reference": "GM-0100"}  # a counter receipt (P-2)


def _error(response: Any) -> dict[str, Any]:
    detail: dict[str, Any] = response.json()["detail"]
    return detail


async def _open_tasks(loan_api: LoanApi, username: str, loan_id: str) -> list[dict[str, Any]]:
    inbox = await loan_api.get(username, "/tasks")
    assert inbox.status_code == 200, inbox.text
    return [t for t in inbox.json() if t["loan_id"] == loan_id]


def _set_register_stage(app: FastAPI, loan_id: str, stage: str) -> None:
    with app.state.sessions() as session:
        record = session.get(LoanRecord, loan_id)
        assert record is not None
        record.stage = stage
        session.add(record)
        session.commit()


async def test_a_teller_takes_a_payment_at_the_counter(loan_api: LoanApi, app: FastAPI) -> None:
    loan_id = await loan_api.apply()
    await loan_api.to_repaying(loan_id)

    # P-2: cash into the settlement account; nothing is overdue, so it waits for the due date
    paid = await loan_api.step(
        "teller1", loan_id, "payments", {"amount": "500.00", "reference": "GM-0001"}, key="p-1"
    )
    assert paid["stage"] == "repaying"
    view = paid["servicing"]
    assert view["payments"] == 1
    assert view["loan_class"] == "normal" and view["bucket"] == "current"
    assert view["days_past_due"] == 0 and Decimal(view["arrears"]) == 0
    assert Decimal(view["principal_outstanding"]) == Decimal("30000")

    ledger = (await loan_api.get("officer1", f"/loans/{loan_id}/ledger")).json()
    assert [e["kind"] for e in ledger] == ["disbursement", "deposit"]
    deposit = ledger[1]
    assert sum(Decimal(line["debit"]) for line in deposit["lines"]) == Decimal("500.00")

    # The same Idempotency-Key: the first result, one deposit.
    again = await loan_api.step(
        "teller1", loan_id, "payments", {"amount": "500.00", "reference": "GM-0001"}, key="p-1"
    )
    assert again["servicing"]["payments"] == 1
    ledger = (await loan_api.get("officer1", f"/loans/{loan_id}/ledger")).json()
    assert [e["kind"] for e in ledger] == ["disbursement", "deposit"]

    # The bad-input list.
    for amount in ("0", "-5", "0.00", "10.123"):
        response = await loan_api.post(
            "teller1", f"/loans/{loan_id}/payments", PAY | {"amount": amount}
        )
        assert response.status_code == 422, (amount, response.text)
        assert [e["field"] for e in _error(response)["errors"]] == ["amount"], amount
        assert _error(response)["message"] == "invalid request: amount"
    missing = await loan_api.post("teller1", f"/loans/{loan_id}/payments", {})
    assert missing.status_code == 422 and _error(missing)["errors"][0]["field"] == "amount"
    unknown = await loan_api.post(
        "teller1", "/loans/LN20260101DEADBEEF/payments", PAY | {"amount": "1"}
    )
    assert unknown.status_code == 404, unknown.text
    by_officer = await loan_api.post(
        "officer1", f"/loans/{loan_id}/payments", PAY | {"amount": "1"}
    )
    assert by_officer.status_code == 403 and _error(by_officer)["rule"] == "P-2"

    # Another branch's teller may not take money for a CB01 loan.
    with app.state.sessions() as session:
        session.add(
            StaffUser(
                username="teller2",
                full_name="钱芳",
                password_hash=hash_password(DEV_PASSWORD),
                role=Role.TELLER.value,
                branch_code="CB02",
            )
        )
        session.commit()
    foreign = await loan_api.post("teller2", f"/loans/{loan_id}/payments", PAY | {"amount": "1"})
    assert foreign.status_code == 403, foreign.text

    # Nothing of the refused attempts reached the loan.
    detail = (await loan_api.get("officer1", f"/loans/{loan_id}")).json()
    assert detail["workflow"]["servicing"]["payments"] == 1

    # P-7: a closed loan takes no payment, only its final evaluation (which the workflow,
    # still repaying in truth, refuses in turn).
    _set_register_stage(app, loan_id, "closed")
    closed = await loan_api.post("teller1", f"/loans/{loan_id}/payments", PAY | {"amount": "1"})
    assert closed.status_code == 409 and _error(closed)["rule"] == "P-7"
    assert "repaid and closed" in _error(closed)["message"]
    warned = await loan_api.post(
        "officer1", f"/loans/{loan_id}/warnings", {"signal": "lawsuit", "note": "涉诉"}
    )
    assert warned.status_code == 409 and _error(warned)["rule"] == "P-7"
    evaluation = {"evaluation": "按期结清，信用良好"}
    evaluated = await loan_api.post("officer1", f"/loans/{loan_id}/final-evaluation", evaluation)
    assert evaluated.status_code == 409 and _error(evaluated)["rule"] == "P-7"
    assert "not awaiting its final evaluation" in _error(evaluated)["message"]


async def test_post_loan_steps_wait_for_the_payout(loan_api: LoanApi) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    response = await loan_api.post("teller1", f"/loans/{loan_id}/payments", PAY)
    assert response.status_code == 409, response.text
    assert "post-loan steps begin" in _error(response)["message"]


async def test_the_first_check_warnings_and_classification(loan_api: LoanApi) -> None:
    # A livestock loan under guarantee is a business loan: K-1 first check after payout.
    loan_id = await loan_api.apply()
    detail = await loan_api.to_repaying(loan_id)
    assert detail["loan"]["loan_class"] == "normal" and detail["loan"]["bucket"] == "current"

    tasks = await _open_tasks(loan_api, "officer1", loan_id)
    assert [t["kind"] for t in tasks] == ["inspection"]
    task_key = tasks[0]["task_key"]
    assert date.fromisoformat(tasks[0]["due_date"]) > china_today()
    report = {"task_key": task_key, "findings": FINDINGS}

    by_reviewer = await loan_api.post("reviewer1", f"/loans/{loan_id}/inspections", report)
    assert by_reviewer.status_code == 403 and _error(by_reviewer)["rule"] == "K-5"
    bad = await loan_api.post(
        "officer1", f"/loans/{loan_id}/inspections", {"task_key": task_key, "findings": {}}
    )
    assert bad.status_code == 422
    assert "findings.purpose_kept" in [e["field"] for e in _error(bad)["errors"]]

    reported = await loan_api.step("officer1", loan_id, "inspections", report)
    [check] = reported["servicing"]["inspections"]
    assert check["kind"] == "first" and check["done_by"] == "officer1"
    assert check["findings"]["purpose_kept"] is True
    assert reported["servicing"]["warnings"] == []  # a clean check raises no signal
    assert await _open_tasks(loan_api, "officer1", loan_id) == []

    # The same report again is the same step: its first answer (issue 9); a new report of
    # the closed check is refused (K-5).
    resent = await loan_api.post("officer1", f"/loans/{loan_id}/inspections", report)
    assert resent.status_code == 200 and resent.json() == reported
    again = await loan_api.post("officer1", f"/loans/{loan_id}/inspections", report, key="2nd")
    assert again.status_code == 409 and _error(again)["rule"] == "K-5"
    assert _error(again)["errors"][0]["field"] == "task_key"

    # W-1: the officer raises a signal; W-2: the branch head takes a measure.
    raised = await loan_api.step(
        "officer1", loan_id, "warnings", {"signal": "natural_disaster", "note": "冰雹，圈舍受损"}
    )
    [warning] = raised["servicing"]["warnings"]
    assert warning["raised_by"] == "officer1" and warning["measure"] is None
    head_tasks = await _open_tasks(loan_api, "head1", loan_id)
    assert [(t["kind"], t["task_key"]) for t in head_tasks] == [("warning", warning["task_key"])]
    decision = {"task_key": warning["task_key"], "measure": "demand_correction", "note": "限期修复"}
    by_officer = await loan_api.post("officer1", f"/loans/{loan_id}/warning-decisions", decision)
    assert by_officer.status_code == 403 and _error(by_officer)["rule"] == "W-2"
    # Not escalated: the post-loan manager may not decide it yet (the workflow says so).
    early = await loan_api.post("manager1", f"/loans/{loan_id}/warning-decisions", decision)
    assert early.status_code == 403 and _error(early)["rule"] == "W-2"
    decided = await loan_api.step("head1", loan_id, "warning-decisions", decision)
    [warning] = decided["servicing"]["warnings"]
    assert warning["measure"] == "demand_correction" and warning["decided_by"] == "head1"
    assert await _open_tasks(loan_api, "head1", loan_id) == []

    # F-1: a reviewer's judgement puts the loan lower, never higher; the register shows it.
    by_officer = await loan_api.post(
        "officer1", f"/loans/{loan_id}/classification", {"loan_class": "doubtful", "reason": "x"}
    )
    assert by_officer.status_code == 403 and _error(by_officer)["rule"] == "F-1"
    lower = {"loan_class": "substandard", "reason": "灾后养殖收入大幅下降"}
    classified = await loan_api.step("reviewer1", loan_id, "classification", lower)
    assert classified["servicing"]["loan_class"] == "substandard"
    register = (await loan_api.get("officer1", f"/loans/{loan_id}")).json()["loan"]
    assert register["loan_class"] == "substandard" and register["bucket"] == "current"
    assert register["days_past_due"] == 0
    assert Decimal(register["principal_outstanding"]) == Decimal("30000")
    [line] = (await loan_api.get("officer1", "/loans", stage="repaying")).json()
    assert (line["loan_class"], line["bucket"]) == ("substandard", "current")

    # A judgement may be eased while it stays at or below the days-past-due floor (正常
    # here); a class better than the floor is refused, which needs days past due and is
    # tested on the time-skipping server (tests/workflows/test_postloan.py). A reason is
    # always required.
    eased = {"loan_class": "special_mention", "reason": "已恢复生产"}
    classified = await loan_api.step("reviewer1", loan_id, "classification", eased)
    assert classified["servicing"]["loan_class"] == "special_mention"
    blank = {"loan_class": "doubtful", "reason": " "}  # trimmed to nothing at the edge
    refused = await loan_api.post("reviewer1", f"/loans/{loan_id}/classification", blank)
    assert refused.status_code == 422, refused.text
    assert _error(refused)["errors"][0]["field"] == "reason"

    # The arrears steps, on a loan with no arrears: each refused with its rule.
    refusals = [
        ("officer1", "collection-actions", {"task_key": "x", "actions": ["电话"], "outcome": "-"}),
        ("officer1", "notice-receipts", {"notice_key": "x", "received_on": str(china_today())}),
        ("head1", "wilful-default", {"reason": "有能力还款而拒不还款"}),
        ("teller1", "collection-actions", {"task_key": "x", "actions": ["电话"], "outcome": "-"}),
        ("officer1", "wilful-default", {"reason": "有能力还款而拒不还款"}),
    ]
    answers = []
    for username, endpoint, body in refusals:
        response = await loan_api.post(username, f"/loans/{loan_id}/{endpoint}", body)
        answers.append((response.status_code, _error(response)["rule"]))
    assert answers == [(409, "D-1"), (409, "D-3"), (409, "D-5"), (403, "D-1"), (403, "D-5")]
    too_many = {"task_key": "x", "actions": ["电话"] * 11, "outcome": "-"}
    response = await loan_api.post("officer1", f"/loans/{loan_id}/collection-actions", too_many)
    assert response.status_code == 422 and _error(response)["errors"][0]["field"] == "actions"


async def test_a_village_visit_reports_each_household_on_its_own(
    loan_api: LoanApi, app: FastAPI
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.to_repaying(loan_id)
    [task] = await _open_tasks(loan_api, "officer1", loan_id)
    _insert_loan(app, "LNOTHERVILLAGE", "HH-OTHER-1", "后山村", "CB01")
    report = {"loan_id": loan_id, "task_key": task["task_key"], "findings": FINDINGS}
    body = {
        "reports": [
            {**report, "loan_id": "LN20260101DEADBEEF"},
            {**report, "loan_id": "LNOTHERVILLAGE"},
            report,
            report,
        ]
    }
    response = await loan_api.post("officer1", "/inspections/villages/前进村/reports", body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["village"], result["accepted"], result["refused"]) == ("前进村", 2, 2)
    outcomes = [(r["loan_id"], r["ok"], r["status_code"], r["rule"]) for r in result["results"]]
    assert outcomes == [
        ("LN20260101DEADBEEF", False, 404, None),
        ("LNOTHERVILLAGE", False, 422, "K-2"),
        (loan_id, True, 200, None),
        (loan_id, True, 200, None),  # the same report again is the same step (issue 9)
    ]
    assert result["results"][3]["loan"] == result["results"][2]["loan"]
    accepted = result["results"][2]["loan"]
    assert accepted["servicing"]["inspections"][0]["done_by"] == "officer1"
    assert await _open_tasks(loan_api, "officer1", loan_id) == []

    by_head = await loan_api.post("head1", "/inspections/villages/前进村/reports", body)
    assert by_head.status_code == 403 and _error(by_head)["rule"] == "K-5"
    empty = await loan_api.post("officer1", "/inspections/villages/前进村/reports", {"reports": []})
    assert empty.status_code == 422 and _error(empty)["errors"][0]["field"] == "reports"


async def test_a_micro_credit_loan_has_no_first_check(loan_api: LoanApi) -> None:
    # Livestock under a credit guarantee is farm micro credit (农户小额信用贷款): no K-1
    # first check, and its K-2 routine check, batched by village, comes months later.
    loan_id = await loan_api.apply(guarantee_type="credit", guarantors=[], amount="5000")
    await loan_api.to_repaying(loan_id, amount="5000")
    assert await _open_tasks(loan_api, "officer1", loan_id) == []
    villages = await loan_api.get("officer1", "/inspections/villages")
    assert villages.status_code == 200 and villages.json() == []


def _insert_loan(app: FastAPI, loan_id: str, household: str, village: str, branch: str) -> None:
    data = application_data(china_today())
    with app.state.sessions() as session:
        session.add(
            LoanRecord(
                loan_id=loan_id,
                stage="repaying",
                branch_code=branch,
                officer_username="officer1",
                applicant_name=f"{village}户主",
                id_number_masked="410102********0010",
                phone_masked="138****5678",
                household_id=household,
                village=village,
                purpose=data["purpose"],
                guarantee_type="credit",
                repayment_method=data["repayment_method"],
                amount_requested_fen=500_000,
                term_months=12,
                policy_version="2026.1",
                applied_at=datetime.now(UTC),
                loan_class="normal",
                bucket="current",
            )
        )
        session.commit()


def _insert_task(
    app: FastAPI,
    loan_id: str,
    number: int,
    due_on: date,
    *,
    kind: str = "village_inspection",
    status: str = "open",
    branch: str = "CB01",
) -> str:
    task_key = f"{loan_id}:inspection:{number}"
    with app.state.sessions() as session:
        session.add(
            Task(
                task_key=task_key,
                loan_id=loan_id,
                kind=kind,
                role=Role.LOAN_OFFICER.value,
                branch_code=branch,
                status=status,
                due_date=due_on,
            )
        )
        session.commit()
    return task_key


async def test_village_batches_group_the_branch_routine_checks(
    app: FastAPI, http: AsyncClient, login: Login
) -> None:
    today = china_today()
    _insert_loan(app, "LNV1", "HH-V-2", "前进村", "CB01")
    _insert_loan(app, "LNV2", "HH-V-1", "前进村", "CB01")
    _insert_loan(app, "LNV3", "HH-W-1", "东岗村", "CB01")
    _insert_loan(app, "LNV4", "HH-X-1", "前进村", "CB02")  # another branch
    _insert_loan(app, "LNV5", "HH-Y-1", "前进村", "CB01")  # its check is done
    _insert_loan(app, "LNV6", "HH-Z-1", "前进村", "CB01")  # a business loan's check
    k1 = _insert_task(app, "LNV1", 1, today + timedelta(days=9))
    k2 = _insert_task(app, "LNV2", 1, today + timedelta(days=5))
    k3 = _insert_task(app, "LNV3", 2, today + timedelta(days=20))
    _insert_task(app, "LNV4", 1, today, branch="CB02")
    _insert_task(app, "LNV5", 1, today, status="done")
    _insert_task(app, "LNV6", 1, today, kind="inspection")

    officer = Actor(username="officer1", name="王建国", role=Role.LOAN_OFFICER, branch="CB01")
    with app.state.sessions() as session:
        batches = servicing.village_inspections(session, officer)
    assert [(b.village, b.due_on) for b in batches] == [
        ("东岗村", today + timedelta(days=20)),
        ("前进村", today + timedelta(days=5)),  # its earliest household
    ]
    assert [(h.loan_id, h.household_id, h.task_key) for h in batches[1].households] == [
        ("LNV2", "HH-V-1", k2),  # household order
        ("LNV1", "HH-V-2", k1),
    ]
    assert [h.task_key for h in batches[0].households] == [k3]

    # Over HTTP: the loan officers, post-loan managers and heads of the branch.
    for username in ("officer1", "manager1", "head1"):
        response = await http.get("/inspections/villages", headers=await login(username))
        assert response.status_code == 200, response.text
        assert response.json() == [b.model_dump(mode="json") for b in batches]
        text = json.dumps(response.json(), ensure_ascii=False)
        assert "138" not in text and "410102" not in text  # H-3: no ID or phone numbers
    other = await http.get("/inspections/villages", headers=await login("officer3"))
    assert other.status_code == 200 and other.json()[0]["households"][0]["loan_id"] == "LNV4"
    for username in ("reviewer1", "teller1", "approver1"):
        response = await http.get("/inspections/villages", headers=await login(username))
        assert response.status_code == 403 and _error(response)["rule"] == "K-2", username
    assert (await http.get("/inspections/villages")).status_code == 401


async def test_a_handover_moves_the_officers_loans_and_open_tasks(loan_api: LoanApi) -> None:
    """H-1: one handover signed by both officers and the head; the successor owns the loan
    and its tasks from then on."""
    loan_id = await loan_api.apply()
    await loan_api.to_repaying(loan_id)
    [check] = await _open_tasks(loan_api, "officer1", loan_id)
    assert check["kind"] == "inspection" and check["claimed_by"] == "officer1"
    assert await _open_tasks(loan_api, "officer2", loan_id) == []  # the loan's own officer's

    body = {
        "from_officer": "officer1",
        "to_officer": "officer2",
        "leaving_officer_signed": True,
        "successor_signed": True,
    }
    by_officer = await loan_api.post("officer1", "/handovers", body)
    assert by_officer.status_code == 403 and _error(by_officer)["rule"] == "H-1"
    for wrong, field in (("reviewer1", "to_officer"), ("officer3", "to_officer")):
        refused = await loan_api.post("head1", "/handovers", {**body, "to_officer": wrong})
        assert refused.status_code == 422, refused.text
        assert (_error(refused)["rule"], _error(refused)["errors"][0]["field"]) == ("H-1", field)
    unsigned = await loan_api.post("head1", "/handovers", {**body, "successor_signed": False})
    assert unsigned.status_code == 200
    assert unsigned.json()["moved"] == 0
    assert unsigned.json()["results"][0]["rule"] == "H-1"

    moved = await loan_api.post("head1", "/handovers", body)
    assert moved.status_code == 200, moved.text
    result = moved.json()
    assert (result["moved"], result["refused"]) == (1, 0)
    assert result["results"][0]["loan"]["officer"] == "officer2"
    detail = (await loan_api.get("head1", f"/loans/{loan_id}")).json()
    assert detail["loan"]["officer"] == "officer2"
    [handover] = detail["workflow"]["servicing"]["handovers"]
    assert (handover["from_officer"], handover["signed_by_head"]) == ("officer1", "head1")
    [check] = await _open_tasks(loan_api, "officer2", loan_id)
    assert check["claimed_by"] == "officer2"
    assert await _open_tasks(loan_api, "officer1", loan_id) == []
    # The leaving officer may no longer report the loan's check: it is the successor's.
    findings = {
        "purpose_kept": True,
        "business_normal": True,
        "household_income": "稳定",
        "health": "良好",
        "marriage": "已婚",
        "contact_details_current": True,
    }
    late = await loan_api.post(
        "officer1",
        f"/loans/{loan_id}/inspections",
        {"task_key": check["task_key"], "findings": findings},
    )
    assert late.status_code == 409 and "officer2" in _error(late)["message"]


async def test_begin_servicing_finds_no_parked_loan_under_the_current_code(
    loan_api: LoanApi, api_settings: Settings
) -> None:
    """``manage.py begin-servicing`` asks the real server for loans parked at disbursement
    (only loans paid out by the code before servicing are); a loan paid out now serves at
    once, so none is found and nothing is signalled."""
    loan_id = await loan_api.apply()
    await loan_api.to_repaying(loan_id)
    assert await manage.begin_servicing(api_settings) == 0


async def test_an_extension_request_through_the_api(loan_api: LoanApi) -> None:
    """X-1: by the loan officer, with the guarantor's consent; then the original route (X-4)."""
    loan_id = await loan_api.apply()
    await loan_api.to_repaying(loan_id)
    body = {"months": 6, "reason": "生猪价格下跌，延后出栏", "guarantor_consent": False}
    refused = await loan_api.post("officer1", f"/loans/{loan_id}/extension-requests", body)
    assert refused.status_code in (409, 422) and _error(refused)["rule"] == "X-1"
    body["guarantor_consent"] = True
    teller = await loan_api.post("teller1", f"/loans/{loan_id}/extension-requests", body)
    assert teller.status_code == 403 and _error(teller)["rule"] == "X-1"
    status = await loan_api.step("officer1", loan_id, "extension-requests", body, key="x-1")
    again = await loan_api.step("officer1", loan_id, "extension-requests", body, key="x-1")
    assert again == status  # the same request sent twice: one extension
    [extension] = status["servicing"]["extensions"]
    assert (extension["outcome"], extension["at"]) == ("pending", "review")
    tasks = (await loan_api.get("reviewer1", "/tasks")).json()
    assert any(t["loan_id"] == loan_id and t["kind"] == "review" for t in tasks)
