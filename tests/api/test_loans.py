"""Origination through HTTP: each member of staff signs in and takes their own step.

A real worker runs the loans' workflows on the test's own task queue; the workflow
works asynchronously, so the tests poll the loan (bounded) where a step is not a
direct answer to a request.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

from tests.api.conftest import (
    POLL_INTERVAL,
    POLL_TRIES,
    LoanApi,
    approval_body,
    china_today,
    review_body,
    signing_body,
)
from tests.samples import application_data, report_data

PHONE = "13812345678"  # the sample applicant's phone (tests/samples.py)
GUARANTOR_PHONE = "13987654321"


def _pii_of(data: dict[str, Any]) -> list[str]:
    """The full personal numbers of a sample application (rule H-3)."""
    return [
        data["applicant"]["id_number"],
        data["applicant"]["phone"],
        *(g["id_number"] for g in data["guarantors"]),
        *(g["phone"] for g in data["guarantors"]),
    ]


async def _notifications(loan_api: LoanApi, loan_id: str, template: str) -> list[dict[str, Any]]:
    """The loan's notifications once one with ``template`` is there (sent by an activity)."""
    for _ in range(POLL_TRIES):
        response = await loan_api.get("officer1", f"/loans/{loan_id}/notifications")
        assert response.status_code == 200, response.text
        sent: list[dict[str, Any]] = response.json()
        if any(n["template"] == template for n in sent):
            return sent
        await asyncio.sleep(POLL_INTERVAL)
    raise AssertionError(f"no {template} notification for loan {loan_id}")


async def test_county_loan_from_application_to_disbursement(loan_api: LoanApi) -> None:
    today = china_today()
    data = application_data(today)
    created = await loan_api.post("officer1", "/loans", data)
    assert created.status_code == 201, created.text
    assert created.json()["stage"] == "applied"
    assert created.json()["policy_version"] == "2026.1"
    loan_id = created.json()["loan_id"]
    assert created.json()["workflow_id"] == f"loan-{loan_id}"

    detail = await loan_api.wait_for_stage(loan_id, "investigation")
    assert detail["loan"]["officer"] == "officer1" and detail["loan"]["branch_code"] == "CB01"
    assert detail["workflow"]["decision_due"] is not None  # rule A-4: the clock runs

    # The officer finds the investigation in the inbox and claims it.
    inbox = (await loan_api.get("officer1", "/tasks")).json()
    tasks = [t for t in inbox if t["loan_id"] == loan_id]
    assert [t["kind"] for t in tasks] == ["investigate", "investigate"]
    assert tasks[0]["step_endpoint"] == f"/loans/{loan_id}/investigations"
    claimed = await loan_api.post("officer1", f"/tasks/{tasks[0]['id']}/claim")
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["claimed_by"] == "officer1"

    # rule I-1: two officers, blind to each other until both reports are in
    first = await loan_api.step("officer1", loan_id, "investigations", report_data())
    assert first["stage"] == "investigation"
    assert first["investigators_reported"] == ["officer1"] and first["reports"] == []
    seen_by_other = (await loan_api.get("officer2", f"/loans/{loan_id}")).json()["workflow"]
    assert seen_by_other["reports"] == []
    assert (await loan_api.get("officer2", f"/loans/{loan_id}/audit")).status_code == 403
    assert seen_by_other["investigators_reported"] == ["officer1"]
    second = await loan_api.step("officer2", loan_id, "investigations", report_data())
    assert second["stage"] == "review"
    assert sorted(r["officer"] for r in second["reports"]) == ["officer1", "officer2"]
    assert second["credit_report"] is not None  # rule I-4

    reviewed = await loan_api.step("reviewer1", loan_id, "review", review_body())
    assert reviewed["stage"] == "approval"
    decided = await loan_api.step("approver1", loan_id, "decision", approval_body("28000"))
    assert decided["stage"] == "signing"
    assert Decimal(decided["approved"]["amount"]) == Decimal("28000")
    assert decided["approved"]["approved_by"] == "approver1"
    signed = await loan_api.step("officer1", loan_id, "contract", signing_body(today))
    assert signed["stage"] in ("disbursing", "disbursed", "repaying")

    detail = await loan_api.wait_for_stage(loan_id, "repaying")
    assert Decimal(detail["loan"]["amount_approved"]) == Decimal("28000")
    assert detail["loan"]["maturity_date"] is not None

    # rule C-4: the schedule, fixed at disbursement, reconciles to the approved amount
    schedule = (await loan_api.get("officer1", f"/loans/{loan_id}/schedule")).json()
    assert [line["number"] for line in schedule] == list(range(1, 13))
    assert sum(Decimal(line["principal"]) for line in schedule) == Decimal("28000")
    assert Decimal(schedule[-1]["remaining_principal"]) == 0

    # rule C-3: one balanced disbursement entry
    ledger = (await loan_api.get("officer1", f"/loans/{loan_id}/ledger")).json()
    assert [entry["kind"] for entry in ledger] == ["disbursement"]
    lines = ledger[0]["lines"]
    debits = sum(Decimal(line["debit"]) for line in lines)
    credits = sum(Decimal(line["credit"]) for line in lines)
    assert debits == credits == Decimal("28000")

    # rule A-3 / C-4: the borrower was told, by SMS, with personal numbers masked (H-3)
    sent = await _notifications(loan_api, loan_id, "loan_disbursed")
    sms = [n for n in sent if n["channel"] == "sms"]
    assert sorted(n["template"] for n in sms) == [
        "application_received",
        "loan_approved",
        "loan_disbursed",
    ]
    assert {n["recipient"] for n in sms} == {"138****5678"}

    # rule H-3: the register line is masked
    register = (await loan_api.get("officer1", "/loans")).json()
    assert [line["loan_id"] for line in register] == [loan_id]
    assert "****" in register[0]["id_number"]
    assert register[0]["id_number"] != data["applicant"]["id_number"]
    assert register[0]["phone"] == "138****5678"
    assert register[0]["stage"] == "repaying"

    # rule H-2: every human step, who (from the token), what, under which policy, in order
    audit = (await loan_api.get("auditor1", f"/loans/{loan_id}/audit")).json()
    # Origination is the first run; servicing goes on in later ones (continue-as-new).
    runs = list(dict.fromkeys(e["run_id"] for e in audit))
    for run in runs:
        ids = [e["event_id"] for e in audit if e["run_id"] == run]
        assert ids == sorted(ids)
    assert [e["run_id"] for e in audit] == sorted((e["run_id"] for e in audit), key=runs.index)
    assert {e["policy_version"] for e in audit} == {"2026.1"}
    application = audit[0]
    assert application["kind"] == "application" and application["actor"] == "officer1"
    assert application["decision"] == "received"
    human = [(e["step"], e["actor"], e["decision"]) for e in audit if e["kind"] == "human_step"]
    assert human == [
        ("submit_investigation", "officer1", "approve"),
        ("submit_investigation", "officer2", "approve"),
        ("review_loan", "reviewer1", "forward"),
        ("decide_loan", "approver1", "approve"),
        ("sign_contract", "officer1", "signed"),
    ]
    assert all(e["accepted"] for e in audit)
    automatic = {e["step"] for e in audit if e["kind"] == "automatic"}
    assert {"fetch_credit_report", "post_disbursement", "store_schedule"} <= automatic

    # rule H-3: no full ID or phone number anywhere the API answered about this loan
    answers = [
        json.dumps(payload, ensure_ascii=False)
        for payload in (sent, register, audit, detail, schedule, ledger)
    ]
    for number in _pii_of(data):
        assert not any(number in text for text in answers), number

    balances = await loan_api.get("auditor1", "/ledger/balances")
    assert balances.status_code == 200, balances.text
    accounts = {k: Decimal(v) for k, v in balances.json().items()}
    assert accounts["1301"] == Decimal("28000")  # loans receivable
    assert sum(accounts.values()) == 0  # the journal balances
    assert (await loan_api.get("head1", "/outbox")).status_code == 403  # all branches' SMS
    forbidden = await loan_api.get("officer1", "/ledger/balances")
    assert forbidden.status_code == 403


async def test_prefecture_route_above_the_county_limit(loan_api: LoanApi) -> None:
    # rule A-2: above 50 000 the branch head confirms and the prefecture reviews and approves
    loan_id = await loan_api.apply(
        amount="80000",
        term_months=24,
        repayment_method="equal_installment",
        household_annual_income="200000",
    )
    await loan_api.investigate(loan_id, amount="80000", term_months=24)
    status = await loan_api.step("reviewer1", loan_id, "review", review_body())
    assert status["tier"] == "prefecture"
    assert status["stage"] == "branch_confirmation"

    # The inbox routes each step: approver1 (county, 50 000) never sees this loan.
    head_tasks = (await loan_api.get("head1", "/tasks")).json()
    assert [t["kind"] for t in head_tasks if t["loan_id"] == loan_id] == ["confirm_as_branch_head"]
    status = await loan_api.step(
        "head1", loan_id, "branch-confirmation", review_body("同意报二级分行审批")
    )
    assert status["stage"] == "prefecture_review"

    pref_tasks = (await loan_api.get("pref_reviewer", "/tasks")).json()
    assert [t["kind"] for t in pref_tasks if t["loan_id"] == loan_id] == ["prefecture_review"]
    status = await loan_api.step("pref_reviewer", loan_id, "review", review_body("审查通过"))
    assert status["stage"] == "approval"

    assert (await loan_api.get("approver1", "/tasks")).json() == []
    pref_approvals = (await loan_api.get("pref_approver", "/tasks")).json()
    assert [t["kind"] for t in pref_approvals if t["loan_id"] == loan_id] == ["approve"]
    status = await loan_api.step(
        "pref_approver", loan_id, "decision", approval_body("80000", term_months=24)
    )
    assert status["stage"] == "signing"
    assert status["approved"]["approved_by"] == "pref_approver"

    steps = [(s["step"], s["actor"]) for s in status["steps"]]
    assert steps == [
        ("review", "reviewer1"),
        ("branch_confirmation", "head1"),
        ("review", "pref_reviewer"),
        ("decision", "pref_approver"),
    ]
    detail = await loan_api.wait_for_stage(loan_id, "signing")
    assert Decimal(detail["loan"]["amount_approved"]) == Decimal("80000")


async def test_withdrawal_ends_the_loan_and_frees_the_household(loan_api: LoanApi) -> None:
    data = application_data(china_today())
    created = await loan_api.post("officer1", "/loans", data)
    assert created.status_code == 201, created.text
    loan_id = created.json()["loan_id"]
    await loan_api.wait_for_stage(loan_id, "investigation")

    status = await loan_api.step("officer1", loan_id, "withdrawal", {"reason": "借款人已筹到资金"})
    assert status["stage"] == "withdrawn"
    detail = await loan_api.wait_for_stage(loan_id, "withdrawn")
    assert [r["rule"] for r in detail["loan"]["outcome_reasons"]] == ["A-3"]
    assert (await loan_api.get("officer1", "/tasks")).json() == []

    # The borrower is told; by then the household is free again (rule E-7).
    sent = await _notifications(loan_api, loan_id, "application_withdrawn")
    assert "application_withdrawn" in {n["template"] for n in sent}
    again = await loan_api.post("officer1", "/loans", data)
    assert again.status_code == 201, again.text

    # A withdrawn loan takes no more steps.
    late = await loan_api.post("officer1", f"/loans/{loan_id}/investigations", report_data())
    assert late.status_code == 409, late.text


async def test_loans_are_found_through_temporal_search_attributes(loan_api: LoanApi) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    found: list[dict[str, Any]] = []
    for _ in range(POLL_TRIES):  # Temporal's visibility store catches up asynchronously
        response = await loan_api.get(
            "officer2", "/loans/search", stage="investigation", pending_role="loan_officer"
        )
        assert response.status_code == 200, response.text
        found = [w for w in response.json() if w["loan_id"] == loan_id]
        if found:
            break
        await asyncio.sleep(POLL_INTERVAL)
    assert found, "the loan never showed in Temporal's visibility"
    assert found[0]["branch"] == "CB01" and found[0]["officer"] == "officer1"
    assert found[0]["workflow_id"] == f"loan-{loan_id}" and found[0]["status"] == "RUNNING"
    # another branch's officer may not search this branch
    other = await loan_api.get("officer3", "/loans/search", branch="CB01")
    assert other.status_code == 403
    # the filters are values, never query text
    injected = await loan_api.get("officer2", "/loans/search", stage="x' OR 'a'='a")
    assert injected.status_code == 422


async def test_a_new_loan_is_readable_at_once_and_an_unknown_one_is_404(loan_api: LoanApi) -> None:
    created = await loan_api.post("officer1", "/loans", application_data(china_today()))
    loan_id = created.json()["loan_id"]
    # Straight after 201 the workflow answers even if intake has not written the register yet.
    detail = await loan_api.get("officer1", f"/loans/{loan_id}")
    assert detail.status_code == 200, detail.text
    assert detail.json()["workflow"]["loan_id"] == loan_id
    assert (await loan_api.get("officer3", f"/loans/{loan_id}")).status_code == 403
    missing = await loan_api.get("officer1", "/loans/LN20260101NOSUCH")
    assert missing.status_code == 404
    assert missing.json()["detail"]["errors"][0]["field"] == "loan_id"


async def test_numbers_typed_into_free_text_are_masked_everywhere(loan_api: LoanApi) -> None:
    """rule H-3: a reason quoting a phone and an ID shows masked in lists, state and audit."""
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    phone, id_number = "13912345678", "110101199003078515"
    reason = f"借款人电话{phone}，身份证{id_number}，已另筹资金"
    step = await loan_api.post("officer1", f"/loans/{loan_id}/withdrawal", {"reason": reason})
    assert step.status_code == 200, step.text
    await loan_api.wait_for_stage(loan_id, "withdrawn")
    seen = [
        step.text,
        (await loan_api.get("officer1", "/loans")).text,
        (await loan_api.get("officer1", f"/loans/{loan_id}")).text,
        (await loan_api.get("auditor1", f"/loans/{loan_id}/audit")).text,
    ]
    for text in seen:
        assert phone not in text and id_number not in text
    assert "139****5678" in seen[2]
