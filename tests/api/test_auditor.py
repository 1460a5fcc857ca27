"""The auditor (稽核) reads everything and changes nothing (H-2).

Every route of the app that is not a GET is walked with the auditor's token: each answers
403, except the auditor's own read-only POSTs and signing in, listed here by name. A new
route that lets an auditor through fails this test until it refuses them or is listed.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from api.deps import SESSION_COOKIE
from api.web.forms import LOAN_ACTIONS
from api.web.session import csrf_token
from tests.api.conftest import LoanApi

# POSTs that change nothing: decoding payloads for the Web UI (H-3), and
# replaying a loan's history against the current code (H-2).
READ_ONLY_POSTS: dict[str, Any] = {
    "/codec/decode": {"payloads": []},
    "/loans/{loan_id}/audit/verify": None,
}
# Signing in and out: the auditor's own session, no loan or task.
SIGN_IN = {"/auth/token", "/auth/logout", "/ui/login", "/ui/logout"}
READS = ("", "/schedule", "/ledger", "/notifications", "/audit", "/audit.csv", "/audit.json")


def _writes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route of the app that is not a plain read, with the
    prefixes of the routers that include it."""
    return sorted(
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if route.path is not None
        for method in route.methods or ()
        if method not in ("GET", "HEAD", "OPTIONS")
    )


def _urls(path: str, values: dict[str, list[str]]) -> list[str]:
    """The path with every value of each of its parameters."""
    name = re.search(r"{([^}:]+)[^}]*}", path)
    if name is None:
        return [path]
    assert name.group(1) in values, f"{path}: give the walk values for {{{name.group(1)}}}"
    return [
        url
        for value in values[name.group(1)]
        for url in _urls(path.replace(name.group(0), value, 1), values)
    ]


async def _unchanged(loan_api: LoanApi, loan_id: str) -> dict[str, Any]:
    """What any change to the loan would show: its workflow's steps and records, its
    register row, its tasks and its trail's human steps."""
    detail = (await loan_api.get("officer1", f"/loans/{loan_id}")).json()
    workflow, servicing = detail["workflow"], detail["workflow"]["servicing"]
    trail = (await loan_api.get("auditor1", f"/loans/{loan_id}/audit")).json()
    tasks = (await loan_api.get("officer1", "/tasks")).json()
    return {
        "stage": (detail["loan"]["stage"], workflow["stage"]),
        "officer": (detail["loan"]["officer"], workflow["officer"]),
        "steps": workflow["steps"],
        "servicing": {
            k: servicing[k]
            for k in (
                "payments",
                "loan_class",
                "inspections",
                "warnings",
                "prepayments",
                "write_off",
                "extensions",
                "handovers",
                "final_evaluation",
            )
        },
        "tasks": [(t["task_key"], t["status"], t["claimed_by"]) for t in tasks],
        "trail": [(e["step"], e["actor"]) for e in trail if e["kind"] == "human_step"],
    }


async def test_the_auditor_is_refused_every_change(loan_api: LoanApi, app: FastAPI) -> None:
    loan_id = await loan_api.apply()
    await loan_api.to_repaying(loan_id)
    [task] = [
        t for t in (await loan_api.get("officer1", "/tasks")).json() if t["loan_id"] == loan_id
    ]
    notice = await loan_api.post(
        "officer1", f"/loans/{loan_id}/notices", {"kind": "maturity_notice"}
    )
    assert notice.status_code == 201, notice.text
    before = await _unchanged(loan_api, loan_id)
    values = {
        "number": [notice.json()["number"]],
        "loan_id": [loan_id],
        "task_id": [str(task["id"])],
        "village": ["前进村"],
        "action": list(LOAN_ACTIONS),
        # The Temporal Web UI served to auditors (H-3): terminating a loan from it.
        "path": [f"api/v1/namespaces/default/workflows/loan-{loan_id}/terminate"],
    }
    # Signed in both ways: the API's bearer token and the web pages' session, with the
    # form's CSRF token, so each route sees the auditor and nothing else refuses first.
    headers = await loan_api.headers("auditor1")
    token = headers["Authorization"].removeprefix("Bearer ")
    loan_api.http.cookies.set(SESSION_COOKIE, token)
    form = {"csrf": csrf_token(token, app.state.settings)}

    writes = _writes(app)
    walked = {path for _, path in writes}
    # The walk reaches the steps of both workflows, the inbox, handovers, batches, pages.
    assert {
        "/loans",
        "/loans/{loan_id}/investigations",
        "/loans/{loan_id}/decision",
        "/loans/{loan_id}/payments",
        "/loans/{loan_id}/classification",
        "/loans/{loan_id}/write-off-decision",
        "/tasks/{task_id}/claim",
        "/handovers",
        "/inspections/villages/{village}/reports",
        "/ui/loans/{loan_id}/actions/{action}",
        *READ_ONLY_POSTS,
    } <= walked
    answers: dict[tuple[str, str], int] = {}
    for method, path in writes:
        if path in SIGN_IN:
            continue
        for url in _urls(path, values):
            if path in READ_ONLY_POSTS:
                response = await loan_api.http.request(
                    method, url, json=READ_ONLY_POSTS[path], headers=headers
                )
            else:
                response = await loan_api.http.request(method, url, data=form, headers=headers)
            answers[(method, url)] = response.status_code
    read_only = {("POST", url) for path in READ_ONLY_POSTS for url in _urls(path, values)}
    assert {answers.pop(key) for key in read_only} == {200}
    assert {key: status for key, status in answers.items() if status != 403} == {}

    # Nothing of the loan, its tasks or its trail has changed.
    assert await _unchanged(loan_api, loan_id) == before


async def test_the_auditor_reads_the_loans_of_every_branch(loan_api: LoanApi) -> None:
    county = await loan_api.apply("officer1")  # CB01
    await loan_api.to_repaying(county)
    other = await loan_api.apply("officer3")  # CB02
    await loan_api.wait_for_stage(other, "investigation", username="officer3")
    # A branch's staff see their own branch only; the auditor sees both.
    assert (await loan_api.get("officer1", f"/loans/{other}")).status_code == 403

    register = await loan_api.get("auditor1", "/loans")
    assert register.status_code == 200, register.text
    assert {county, other} <= {line["loan_id"] for line in register.json()}
    by_branch = await loan_api.get("auditor1", "/loans", branch="CB02")
    assert [line["loan_id"] for line in by_branch.json()] == [other]
    for loan_id in (county, other):
        for read in READS:
            response = await loan_api.get("auditor1", f"/loans/{loan_id}{read}")
            assert response.status_code == 200, (loan_id, read, response.text)
    schedule = (await loan_api.get("auditor1", f"/loans/{county}/schedule")).json()
    assert len(schedule) == 12
    ledger = (await loan_api.get("auditor1", f"/loans/{county}/ledger")).json()
    assert [entry["kind"] for entry in ledger] == ["disbursement"]
    trail = (await loan_api.get("auditor1", f"/loans/{other}/audit")).json()
    assert trail[0]["step"] == "apply_for_loan" and trail[0]["actor"] == "officer3"
    for path in ("/ledger/balances", "/outbox", "/tasks"):
        response = await loan_api.get("auditor1", path)
        assert response.status_code == 200, (path, response.text)
