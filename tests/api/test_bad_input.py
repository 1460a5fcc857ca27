"""Bad input through HTTP: a clear 4xx naming the field and the rule, and no effect.

Every refusal leaves the register, the loan's workflow and Temporal as they were:
no workflow is started for a refused application, and a refused step changes
nothing in the loan it was sent to.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from temporalio.testing import WorkflowEnvironment

from api.security import hash_password
from api.services.users import DEV_PASSWORD
from domain.ids import make_resident_id
from settings import Settings
from store.models import Branch, StaffUser
from tests.api.conftest import (
    LoanApi,
    Login,
    approval_body,
    china_today,
    review_body,
    signing_body,
    workflows_on_queue,
)
from tests.samples import application_data, report_data

Data = dict[str, Any]


def _errors(response: Response) -> list[dict[str, Any]]:
    """The error items, after checking the body has the API's one error shape."""
    detail = response.json()["detail"]
    assert set(detail) == {"message", "rule", "errors"}, detail
    assert detail["errors"], detail
    for item in detail["errors"]:
        assert set(item) == {"field", "rule", "reason"}, item
        assert item["reason"], item
    errors: list[dict[str, Any]] = detail["errors"]
    return errors


def _refused(response: Response, status: int, rule: str | None, field: str | None) -> None:
    """``status``, with an error item for ``field`` citing ``rule`` (None: schema error)."""
    assert response.status_code == status, response.text
    items = [(e["field"], e["rule"]) for e in _errors(response)]
    assert (field, rule) in items, items
    if rule is not None:
        assert response.json()["detail"]["rule"] is not None


@pytest.fixture
def staff(http: AsyncClient, login: Login) -> LoanApi:
    """The loan endpoints without a worker: refused applications never reach Temporal."""
    return LoanApi(http, login)


async def _nothing_started(
    api: LoanApi, env: WorkflowEnvironment, settings: Settings, expected: int = 0
) -> None:
    register = await api.get("officer1", "/loans")
    assert register.status_code == 200, register.text
    assert len(register.json()) == expected
    assert len(await workflows_on_queue(env, settings.task_queue)) == expected


# --- the application: schema, then the eligibility rules (E-1..E-14) --------------------


def _born(years_ago: int, today: date) -> dict[str, str]:
    """Applicant overrides for someone ``years_ago`` old, with a matching valid ID (E-2)."""
    birth = date(today.year - years_ago, 1, 1)
    return {"birth_date": birth.isoformat(), "id_number": make_resident_id("410102", birth, "123")}


def _bad_checksum(data: Data, today: date) -> None:
    id_number = data["applicant"]["id_number"]
    wrong = "0" if id_number[-1] != "0" else "1"
    data["applicant"]["id_number"] = id_number[:-1] + wrong


def _born_next_year(data: Data, today: date) -> None:
    birth = date(today.year + 1, 1, 1)
    data["applicant"]["birth_date"] = birth.isoformat()
    data["applicant"]["id_number"] = make_resident_id("410102", birth, "123")


def _set(**fields: Any) -> Callable[[Data, date], None]:
    def change(data: Data, today: date) -> None:
        data.update(fields)

    return change


def _applicant(change: Callable[[date], dict[str, Any]]) -> Callable[[Data, date], None]:
    def apply(data: Data, today: date) -> None:
        data["applicant"].update(change(today))

    return apply


def _without_id_number(data: Data, today: date) -> None:
    del data["applicant"]["id_number"]


def _credit_loan_graded_bbb(data: Data, today: date) -> None:
    data.update(guarantee_type="credit", guarantors=[], amount="5000")
    data["credit_rating"]["score"] = 65  # BBB: below the A that credit loans need


# (id, change to a clean application, status, rule, field)
APPLICATION_CASES = [
    ("wrong type", _set(amount="abc"), 422, None, "amount"),
    ("missing field", _without_id_number, 422, None, "applicant.id_number"),
    ("ID checksum", _bad_checksum, 422, "E-2", "applicant.id_number"),
    ("birth date in the future", _born_next_year, 422, "E-2", "applicant.birth_date"),
    ("under 18", _applicant(lambda today: _born(17, today)), 422, "E-1", "applicant.birth_date"),
    ("amount zero", _set(amount="0"), 422, "E-9", "amount"),
    ("amount negative", _set(amount="-500"), 422, "E-9", "amount"),
    (
        "amount over the cap",
        _set(
            amount="250000",
            household_annual_income="600000",
            term_months=24,
            repayment_method="equal_installment",
        ),
        422,
        "E-9",
        "amount",
    ),
    ("amount over half the income", _set(household_annual_income="50000"), 422, "E-9", "amount"),
    ("term too short", _set(term_months=3), 422, "E-10", "term_months"),
    (
        "term too long",
        _set(term_months=48, repayment_method="equal_installment"),
        422,
        "E-10",
        "term_months",
    ),
    ("unknown purpose", _set(purpose="gambling"), 422, None, "purpose"),
    ("unknown repayment method", _set(repayment_method="whenever"), 422, None, "repayment_method"),
    (
        "method not allowed for the term",
        _set(term_months=24, repayment_method="interest_monthly"),
        422,
        "E-14",
        "repayment_method",
    ),
    ("credit loan below grade A", _credit_loan_graded_bbb, 422, "E-11", "guarantee_type"),
]


@pytest.mark.parametrize(
    ("change", "status", "rule", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in APPLICATION_CASES],
)
async def test_bad_application_is_refused_and_starts_nothing(
    staff: LoanApi,
    temporal_dev_env: WorkflowEnvironment,
    api_settings: Settings,
    change: Callable[[Data, date], None],
    status: int,
    rule: str | None,
    field: str,
) -> None:
    today = china_today()
    data = application_data(today)
    change(data, today)

    response = await staff.post("officer1", "/loans", data)

    _refused(response, status, rule, field)
    await _nothing_started(staff, temporal_dev_env, api_settings)


async def test_age_plus_term_over_the_limit_shows_both_numbers(
    staff: LoanApi, temporal_dev_env: WorkflowEnvironment, api_settings: Settings
) -> None:
    today = china_today()
    # rule E-1: 58 + 3 years = 61 > 60
    data = application_data(
        today, **_born(58, today), term_months=36, repayment_method="equal_installment"
    )

    response = await staff.post("officer1", "/loans", data)

    _refused(response, 422, "E-1", "term_months")
    (reason,) = [e["reason"] for e in _errors(response) if e["rule"] == "E-1"]
    assert "58" in reason and "61" in reason and "60" in reason
    await _nothing_started(staff, temporal_dev_env, api_settings)


async def test_every_broken_rule_is_listed_at_once(staff: LoanApi) -> None:
    today = china_today()
    data = application_data(today, term_months=3, household_annual_income="10000")

    response = await staff.post("officer1", "/loans", data)

    assert response.status_code == 422, response.text
    rules = {(e["rule"], e["field"]) for e in _errors(response)}
    assert {("E-9", "amount"), ("E-10", "term_months")} <= rules


async def test_malformed_json_is_a_422(
    staff: LoanApi, temporal_dev_env: WorkflowEnvironment, api_settings: Settings
) -> None:
    headers = {**await staff.headers("officer1"), "Content-Type": "application/json"}

    response = await staff.http.post("/loans", content=b'{"amount": 30000,', headers=headers)

    assert response.status_code == 422, response.text
    (item,) = _errors(response)
    assert item["field"] is None and item["reason"].startswith("malformed JSON")
    await _nothing_started(staff, temporal_dev_env, api_settings)


async def test_no_token_is_a_401(
    staff: LoanApi, temporal_dev_env: WorkflowEnvironment, api_settings: Settings
) -> None:
    data = application_data(china_today())

    refused = await staff.http.post("/loans", json=data)
    register = await staff.http.get("/loans")
    tasks = await staff.http.get("/tasks")

    for response in (refused, register, tasks):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert _errors(response)[0]["reason"] == "not authenticated"
    await _nothing_started(staff, temporal_dev_env, api_settings)


async def test_a_reviewer_cannot_take_an_application(
    staff: LoanApi, temporal_dev_env: WorkflowEnvironment, api_settings: Settings
) -> None:
    response = await staff.post("reviewer1", "/loans", application_data(china_today()))

    assert response.status_code == 403, response.text
    assert "loan_officer" in _errors(response)[0]["reason"]
    await _nothing_started(staff, temporal_dev_env, api_settings)


async def test_a_step_for_an_unknown_loan_is_a_404(staff: LoanApi) -> None:
    for path, body in (
        ("review", review_body()),
        ("investigations", report_data()),
        ("decision", approval_body()),
    ):
        response = await staff.post("reviewer1", f"/loans/LN20260101DEADBEEF/{path}", body)
        _refused(response, 404, None, "loan_id")
    assert (await staff.get("officer1", "/loans/LN20260101DEADBEEF")).status_code == 404


# --- steps on a running loan: each refusal leaves the loan as it was --------------------


async def _state(api: LoanApi, loan_id: str) -> tuple[str, list[str], list[Any], int]:
    """What a refused step must not change: stage, reporters, recorded steps, history size."""
    workflow = (await api.get("officer1", f"/loans/{loan_id}")).json()["workflow"]
    audit = (await api.get("auditor1", f"/loans/{loan_id}/audit")).json()
    human = [e for e in audit if e["kind"] == "human_step"]
    return workflow["stage"], workflow["investigators_reported"], workflow["steps"], len(human)


async def test_second_application_of_a_household_is_a_409(
    loan_api: LoanApi, temporal_dev_env: WorkflowEnvironment, api_settings: Settings
) -> None:
    data = application_data(china_today())
    first = await loan_api.post("officer1", "/loans", data)
    assert first.status_code == 201, first.text
    await loan_api.wait_for_stage(first.json()["loan_id"], "investigation")

    # rule E-7: one member of a household at a time; the same household applies again
    second = await loan_api.post("officer2", "/loans", data)

    _refused(second, 409, "E-7", "applicant.household_id")
    assert first.json()["loan_id"] in _errors(second)[0]["reason"]
    await _nothing_started(loan_api, temporal_dev_env, api_settings, expected=1)


async def test_the_same_officer_cannot_investigate_twice(loan_api: LoanApi) -> None:
    loan_id = await loan_api.apply()
    await loan_api.investigate(loan_id, officers=["officer1"])
    before = await _state(loan_api, loan_id)

    # rule I-1: two *different* officers (a new request: the same one would be a resend)
    path = f"/loans/{loan_id}/investigations"
    again = await loan_api.post("officer1", path, report_data(), key="second-report")

    _refused(again, 409, "I-1", None)
    assert await _state(loan_api, loan_id) == before
    assert before[:2] == ("investigation", ["officer1"])


async def test_an_investigator_cannot_approve(loan_api: LoanApi) -> None:
    loan_id = await loan_api.apply()
    await loan_api.to_approval(loan_id)
    before = await _state(loan_api, loan_id)

    # rule A-1: officer1 investigated this loan
    response = await loan_api.post("officer1", f"/loans/{loan_id}/decision", approval_body())

    _refused(response, 403, "A-1", None)
    assert response.json()["detail"]["rule"] == "A-1"
    assert await _state(loan_api, loan_id) == before
    assert before[0] == "approval"


async def test_an_approver_over_their_limit_is_a_403(loan_api: LoanApi) -> None:
    loan_id = await loan_api.apply()
    await loan_api.to_approval(loan_id)
    before = await _state(loan_api, loan_id)

    # rule A-2: approver2 may approve up to 20 000; the loan is 30 000
    response = await loan_api.post("approver2", f"/loans/{loan_id}/decision", approval_body())

    _refused(response, 403, "A-2", None)
    assert "20,000.00" in _errors(response)[0]["reason"]
    assert await _state(loan_api, loan_id) == before


async def test_a_step_in_the_wrong_stage_is_a_409(loan_api: LoanApi) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    before = await _state(loan_api, loan_id)

    response = await loan_api.post("approver1", f"/loans/{loan_id}/decision", approval_body())

    assert response.status_code == 409, response.text
    assert "investigation" in _errors(response)[0]["reason"]
    assert response.json()["detail"]["rule"] == "A-2"
    assert await _state(loan_api, loan_id) == before


async def test_signing_after_the_window_is_a_409(loan_api: LoanApi) -> None:
    loan_id = await loan_api.apply()
    approved = await loan_api.to_signing(loan_id)
    before = await _state(loan_api, loan_id)

    # rule C-1: 30 days from the approval
    late = date.fromisoformat(approved["signing_deadline"]) + timedelta(days=1)
    response = await loan_api.post("officer1", f"/loans/{loan_id}/contract", signing_body(late))

    _refused(response, 409, "C-1", "signing.signed_on")
    assert await _state(loan_api, loan_id) == before
    assert before[0] == "signing"
    assert (await loan_api.get("officer1", f"/loans/{loan_id}/ledger")).json() == []


async def test_a_resubmitted_step_with_the_same_key_has_one_effect(loan_api: LoanApi) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    path = f"/loans/{loan_id}/investigations"

    first = await loan_api.post("officer1", path, report_data(), key="report-1")
    again = await loan_api.post("officer1", path, report_data(), key="report-1")

    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.json()["investigators_reported"] == ["officer1"]
    stage, reporters, _steps, human = await _state(loan_api, loan_id)
    assert (stage, reporters, human) == ("investigation", ["officer1"], 1)


async def test_a_resubmitted_step_without_a_key_returns_the_first_answer(
    loan_api: LoanApi,
) -> None:
    """Issue 9: with no Idempotency-Key the key is the request's own (on the day), so a
    double click is one review; another review is a new request, refused by A-2's stage."""
    loan_id = await loan_api.apply()
    await loan_api.investigate(loan_id)
    path = f"/loans/{loan_id}/review"

    first = await loan_api.post("reviewer1", path, review_body())
    again = await loan_api.post("reviewer1", path, review_body())
    other = await loan_api.post("reviewer1", path, review_body("再次审查"))

    assert first.status_code == 200, first.text
    assert again.status_code == 200 and again.json() == first.json()
    _refused(other, 409, "A-2", None)
    stage, _reporters, steps, _human = await _state(loan_api, loan_id)
    assert stage == "approval"
    assert [s["step"] for s in steps] == ["review"]


async def test_a_resubmitted_withdrawal_with_the_same_key_returns_the_first_result(
    loan_api: LoanApi,
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    path = f"/loans/{loan_id}/withdrawal"
    body = {"reason": "借款人已筹到资金"}

    first = await loan_api.post("officer1", path, body, key="withdraw-1")
    again = await loan_api.post("officer1", path, body, key="withdraw-1")

    assert first.status_code == 200, first.text
    assert again.status_code == 200, again.text
    assert again.json() == first.json()


async def test_a_key_reused_for_another_step_never_returns_that_steps_result(
    loan_api: LoanApi,
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    reported = await loan_api.post(
        "officer1", f"/loans/{loan_id}/investigations", report_data(), key="officer1-key"
    )
    assert reported.status_code == 200, reported.text

    withdrawal = {"reason": "借款人已筹到资金"}
    response = await loan_api.post(
        "officer1", f"/loans/{loan_id}/withdrawal", withdrawal, key="officer1-key"
    )

    # Either the withdrawal happens, or the reuse is refused; never the report's answer.
    if response.status_code == 200:
        assert response.json()["stage"] == "withdrawn", response.text
    else:
        assert response.status_code in (409, 422), response.text
        assert (await _state(loan_api, loan_id))[0] == "investigation"


async def test_another_branch_cannot_see_or_act_on_a_loan(loan_api: LoanApi) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    before = await _state(loan_api, loan_id)

    # officer3 works at CB02; the loan is CB01's
    step = await loan_api.post("officer3", f"/loans/{loan_id}/investigations", report_data())
    detail = await loan_api.get("officer3", f"/loans/{loan_id}")
    register = await loan_api.get("officer3", "/loans")
    inbox = await loan_api.get("officer3", "/tasks")

    for response in (step, detail):
        assert response.status_code == 403, response.text
        assert "CB01" in _errors(response)[0]["reason"]
    assert register.json() == [] and inbox.json() == []
    assert await _state(loan_api, loan_id) == before


async def test_out_of_range_numbers_are_a_422_not_a_500(staff: LoanApi) -> None:
    assert (await staff.get("officer1", "/loans", offset=10**30)).status_code == 422
    response = await staff.post("officer1", f"/tasks/{10**30}/claim")
    _refused(response, 422, None, "task_id")
    many = application_data(china_today(), materials=["id_card"] * 1000)
    _refused(await staff.post("officer1", "/loans", many), 422, None, "materials")


async def test_a_large_loan_from_a_branch_without_a_prefecture_is_refused_at_once(
    staff: LoanApi, app: FastAPI, api_settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    """rule A-2: above the county limit the prefecture approves; no prefecture, no route."""
    with app.state.sessions() as session:
        session.add(Branch(code="CB99", name="独立支行", tier="county", parent_code=None))
        session.add(
            StaffUser(
                username="lonely_officer",
                full_name="孤立",
                password_hash=hash_password(DEV_PASSWORD),
                role="loan_officer",
                branch_code="CB99",
            )
        )
        session.commit()
    data = application_data(
        china_today(),
        amount="80000",
        term_months=24,
        repayment_method="equal_installment",
        household_annual_income="200000",
    )
    response = await staff.post("lonely_officer", "/loans", data)
    _refused(response, 409, "A-2", "amount")
    await _nothing_started(staff, temporal_dev_env, api_settings)
