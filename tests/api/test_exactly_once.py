"""Exactly once, for the life of a loan (issue 9).

Every step and every application carries an idempotency key (the client's, the form's
request id, a payment's receipt reference, or the request's own): fifty identical
requests at once have one effect and fifty equal answers, before and after the loan's
workflow continues as new; the same key with another request is a 409.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from fastapi import FastAPI
from httpx import Response
from sqlmodel import select

from api.services.audit import loan_runs
from store.models import JournalEntry, LoanRecord, Notification
from tests.api.conftest import (
    LoanApi,
    approval_body,
    china_today,
    review_body,
    signing_body,
)
from tests.samples import application_data, report_data
from tests.temporal_env import applied_steps

AT_ONCE = 50
FINDINGS = {
    "purpose_kept": True,
    "business_normal": True,
    "household_income": "养殖收入稳定",
    "health": "家庭成员身体健康",
    "marriage": "已婚",
    "contact_details_current": True,
}


async def at_once(
    loan_api: LoanApi, username: str, path: str, body: Any, key: str | None = None
) -> list[Response]:
    await loan_api.headers(username)  # sign in once, before the burst
    return list(
        await asyncio.gather(
            *(loan_api.post(username, path, body, key=key) for _ in range(AT_ONCE))
        )
    )


def one_answer(responses: list[Response], status: int = 200) -> dict[str, Any]:
    """Fifty equal answers: the same status and the same body."""
    odd = [r for r in responses if r.status_code != status]
    assert not odd, f"{len(odd)} of {len(responses)}: {odd[0].text}"
    bodies = [r.json() for r in responses]
    assert all(b == bodies[0] for b in bodies)
    answer: dict[str, Any] = bodies[0]
    return answer


async def test_fifty_identical_applications_start_one_loan(
    loan_api: LoanApi, app: FastAPI
) -> None:
    data = application_data(china_today())
    with_key = one_answer(await at_once(loan_api, "officer1", "/loans", data, key="app-1"), 201)
    # The same key with another application is refused, and starts nothing.
    other = application_data(china_today())
    conflict = await loan_api.post("officer1", "/loans", other, key="app-1")
    assert conflict.status_code == 409 and conflict.json()["detail"]["rule"] == "H-2"
    # Without a key the request is its own key: the same application again is the same loan.
    derived = one_answer(await at_once(loan_api, "officer1", "/loans", other), 201)
    assert derived["loan_id"] != with_key["loan_id"]

    await loan_api.wait_for_stage(with_key["loan_id"], "investigation")
    await loan_api.wait_for_stage(derived["loan_id"], "investigation")
    with app.state.sessions() as session:
        loans = session.exec(select(LoanRecord)).all()
        texts = session.exec(
            select(Notification).where(Notification.template == "application_received")
        ).all()
    assert sorted(r.loan_id for r in loans) == sorted([with_key["loan_id"], derived["loan_id"]])
    assert Counter(t.loan_id for t in texts) == {with_key["loan_id"]: 1, derived["loan_id"]: 1}


async def test_fifty_identical_origination_steps_each_apply_once(
    loan_api: LoanApi, app: FastAPI
) -> None:
    client = app.state.temporal
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    base = f"/loans/{loan_id}"
    reported = {
        officer: one_answer(
            await at_once(loan_api, officer, f"{base}/investigations", report_data())
        )
        for officer in ("officer1", "officer2")
    }
    one_answer(await at_once(loan_api, "reviewer1", f"{base}/review", review_body()))
    one_answer(await at_once(loan_api, "approver1", f"{base}/decision", approval_body()))
    signed = one_answer(
        await at_once(loan_api, "officer1", f"{base}/contract", signing_body(china_today()))
    )
    assert signed["stage"] in ("disbursing", "disbursed")  # the payout may come first

    # The loan is paid out and its workflow continues as new into post-loan management:
    # the signing sent again still answers as the first time, and pays nothing more.
    await loan_api.wait_for_stage(loan_id, "repaying")
    again = await loan_api.post("officer1", f"{base}/contract", signing_body(china_today()))
    assert again.status_code == 200 and again.json() == signed
    # So does a report, though post-loan management has no such step at all.
    resent = await loan_api.post("officer1", f"{base}/investigations", report_data())
    assert resent.status_code == 200 and resent.json() == reported["officer1"]
    assert await applied_steps(await client.client(), loan_id) == {
        "submit_investigation": 2,
        "review_loan": 1,
        "decide_loan": 1,
        "sign_contract": 1,
    }
    with app.state.sessions() as session:
        entries = session.exec(select(JournalEntry).where(JournalEntry.loan_id == loan_id)).all()
    assert [e.kind for e in entries] == ["disbursement"]


async def test_fifty_identical_withdrawals_and_materials_apply_once(
    loan_api: LoanApi, app: FastAPI
) -> None:
    client = app.state.temporal
    *handed_in, missing = application_data(china_today())["materials"]
    loan_id = await loan_api.apply(materials=handed_in)
    await loan_api.wait_for_stage(loan_id, "materials_incomplete")
    base = f"/loans/{loan_id}"
    supplied = one_answer(
        await at_once(loan_api, "officer1", f"{base}/materials", {"materials": [missing]})
    )
    assert supplied["stage"] == "investigation"
    reason = {"reason": "借款人已筹到资金"}
    withdrawn = one_answer(await at_once(loan_api, "officer1", f"{base}/withdrawal", reason))
    assert withdrawn["stage"] == "withdrawn"
    assert await applied_steps(await client.client(), loan_id) == {
        "supply_materials": 1,
        "withdraw_application": 1,
    }


async def test_fifty_identical_post_loan_steps_apply_once_across_runs(
    loan_api: LoanApi, app: FastAPI
) -> None:
    client = app.state.temporal
    loan_id = await loan_api.apply()
    await loan_api.to_repaying(loan_id)
    base = f"/loans/{loan_id}"

    # P-2: a receipt's reference is the payment's key; with another amount it is refused.
    payment = {"amount": "500.00", "reference": "GM-0001"}
    paid = one_answer(await at_once(loan_api, "teller1", f"{base}/payments", payment))
    assert paid["servicing"]["payments"] == 1
    other_amount = await loan_api.post("teller1", f"{base}/payments", {**payment, "amount": "5"})
    assert other_amount.status_code == 409, other_amount.text

    [check] = paid["servicing"]["inspections"]
    report = {"task_key": check["task_key"], "findings": FINDINGS}
    one_answer(await at_once(loan_api, "officer1", f"{base}/inspections", report))
    warning = {"signal": "natural_disaster", "note": "冰雹，圈舍受损"}
    raised = one_answer(await at_once(loan_api, "officer1", f"{base}/warnings", warning))
    [signal] = raised["servicing"]["warnings"]
    measure = {"task_key": signal["task_key"], "measure": "demand_correction", "note": "限期"}
    one_answer(await at_once(loan_api, "head1", f"{base}/warning-decisions", measure))
    judged = {"loan_class": "special_mention", "reason": "灾后收入下降"}
    one_answer(await at_once(loan_api, "reviewer1", f"{base}/classification", judged))
    extension = {"months": 6, "reason": "生猪价格下跌", "guarantor_consent": True}
    one_answer(await at_once(loan_api, "officer1", f"{base}/extension-requests", extension))
    # the extension goes the original loan's route, the same steps.
    one_answer(await at_once(loan_api, "reviewer1", f"{base}/review", review_body("展期属实")))
    terms = approval_body(term_months=6) | {
        "annual_rate": "0.0750",
        "repayment_method": "equal_installment",
    }
    decided = one_answer(await at_once(loan_api, "approver1", f"{base}/decision", terms))
    assert decided["servicing"]["extensions"][0]["outcome"] == "approved"
    agreement = signing_body(china_today()) | {"contract_number": "ZQ-2026-0001"}
    signed = one_answer(await at_once(loan_api, "officer1", f"{base}/contract", agreement))
    assert signed["servicing"]["extensions"][0]["outcome"] == "signed"

    # Enough steps for the run to continue as new (MAX_STEPS_PER_RUN), then the first
    # payment sent again: the first answer, from the run that took it; still one deposit.
    for n in range(2, 7):
        receipt = {"amount": "10.00", "reference": f"GM-{n:04d}"}
        await loan_api.step("teller1", loan_id, "payments", receipt)
    runs = [run async for run, _ in loan_runs(await client.client(), loan_id)]
    assert len(runs) >= 3  # origination, and post-loan management continued as new
    again = one_answer(await at_once(loan_api, "teller1", f"{base}/payments", payment))
    assert again == paid

    assert await applied_steps(await client.client(), loan_id) == {
        "submit_investigation": 2,
        "review_loan": 2,
        "decide_loan": 2,
        "sign_contract": 2,
        "record_payment": 6,
        "report_inspection": 1,
        "raise_warning": 1,
        "decide_warning": 1,
        "classify_loan": 1,
        "request_extension": 1,
    }
    with app.state.sessions() as session:
        entries = session.exec(select(JournalEntry).where(JournalEntry.loan_id == loan_id)).all()
    assert Counter(e.kind for e in entries)["deposit"] == 6


async def test_fifty_identical_prepayments_closure_and_handovers_apply_once(
    loan_api: LoanApi, app: FastAPI
) -> None:
    client = app.state.temporal
    loan_id = await loan_api.apply()
    await loan_api.to_repaying(loan_id)
    base = f"/loans/{loan_id}"
    handover = {
        "from_officer": "officer1",
        "to_officer": "officer2",
        "leaving_officer_signed": True,
        "successor_signed": True,
    }
    moved = one_answer(await at_once(loan_api, "head1", "/handovers", handover, key="h-1"))
    assert (moved["moved"], moved["refused"]) == (1, 0)
    # Sent again once the loans have moved: the first answer, not "moved 0".
    again = await loan_api.post("head1", "/handovers", handover, key="h-1")
    assert again.status_code == 200 and again.json() == moved

    await loan_api.step("teller1", loan_id, "payments", {"amount": "31000.00", "reference": "Q1"})
    one_answer(await at_once(loan_api, "officer2", f"{base}/prepayments", {"amount": "30000.00"}))
    consent = {"consent": True, "note": "同意提前结清"}
    one_answer(await at_once(loan_api, "head1", f"{base}/prepayment-decision", consent))
    await loan_api.wait_for_stage(loan_id, "closed")
    evaluation = {"evaluation": "提前结清，信用良好"}
    closed = one_answer(await at_once(loan_api, "officer2", f"{base}/final-evaluation", evaluation))
    assert closed["servicing"]["final_evaluation"] == "提前结清，信用良好"

    applied = await applied_steps(await client.client(), loan_id)
    assert {k: applied[k] for k in ("hand_over", "request_prepayment", "decide_prepayment")} == {
        "hand_over": 1,
        "request_prepayment": 1,
        "decide_prepayment": 1,
    }
    assert applied["submit_final_evaluation"] == 1


async def test_fifty_identical_branch_confirmations_apply_once(
    loan_api: LoanApi, app: FastAPI
) -> None:
    """A-2: above the county limit the branch head confirms; fifty at once are one."""
    loan_id = await loan_api.apply(
        amount="80000",
        term_months=24,
        repayment_method="equal_installment",
        household_annual_income="200000",
    )
    await loan_api.investigate(loan_id, amount="80000", term_months=24)
    await loan_api.step("reviewer1", loan_id, "review", review_body())
    path = f"/loans/{loan_id}/branch-confirmation"
    confirmed = one_answer(await at_once(loan_api, "head1", path, review_body("同意报审")))
    assert confirmed["stage"] == "prefecture_review"
    applied = await applied_steps(await app.state.temporal.client(), loan_id)
    assert applied["confirm_as_branch_head"] == 1


async def test_fifty_identical_write_off_steps_apply_once(loan_api: LoanApi, app: FastAPI) -> None:
    """Z-1: a loan judged 损失 is proposed for write-off and approved at the prefecture."""
    loan_id = await loan_api.apply()
    await loan_api.to_repaying(loan_id)
    base = f"/loans/{loan_id}"
    loss = {"loan_class": "loss", "reason": "借款人死亡"}
    await loan_api.step("reviewer1", loan_id, "classification", loss)
    proposal = {"reason": "借款人死亡，无财产可供执行"}
    one_answer(await at_once(loan_api, "manager1", f"{base}/write-off", proposal))
    approval = {"approve": True, "note": "同意核销"}
    written = one_answer(
        await at_once(loan_api, "pref_approver", f"{base}/write-off-decision", approval)
    )
    assert written["stage"] == "written_off"
    applied = await applied_steps(await app.state.temporal.client(), loan_id)
    assert (applied["propose_write_off"], applied["decide_write_off"]) == (1, 1)
