"""The OpenAPI document tells the truth: the errors each operation answers, and money.

Schemathesis runs over every operation of the real app (on a real port, with a real
Temporal dev server and worker behind it), generating valid and invalid requests from the
document, and finds no server error and no answer that the document does not describe
(status code, content type, body). Each operation is sent by a signed-in member of staff
whose role may take it, and its path names, most of the time, a loan (one being
investigated, one repaying), a task or a village that exists, so requests get past the
role check and the lookup to the rules and the workflows' validators.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter

from domain.loan import Money
from tests.api.conftest import LoanApi, china_today
from tests.samples import application_data

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
]
MAX_EXAMPLES = 15  # per operation and phase: the whole run stays well under two minutes
SEED = 20260901  # the same requests on every run, so a failure reproduces
KNOWN = 0.8  # how often a path parameter names a record that exists
LOGOUT = "/auth/logout"
# Who sends each operation that a loan officer may not (everything else: officer1).
SENT_BY = {
    "/loans/{loan_id}/review": "reviewer1",
    "/loans/{loan_id}/classification": "reviewer1",
    "/loans/{loan_id}/branch-confirmation": "head1",
    "/loans/{loan_id}/warning-decisions": "head1",
    "/loans/{loan_id}/wilful-default": "head1",
    "/loans/{loan_id}/prepayment-decision": "head1",
    "/handovers": "head1",
    "/loans/{loan_id}/decision": "approver1",
    "/loans/{loan_id}/write-off-decision": "approver1",
    "/loans/{loan_id}/write-off": "manager1",
    "/loans/{loan_id}/payments": "teller1",
    "/loans/{loan_id}/audit": "auditor1",
    "/loans/{loan_id}/audit.csv": "auditor1",
    "/loans/{loan_id}/audit.json": "auditor1",
    "/loans/{loan_id}/audit/verify": "auditor1",
    "/ledger/balances": "auditor1",
    "/outbox": "auditor1",
    "/codec/decode": "auditor1",
}


def _toml(value: Any) -> str:
    """A TOML value: strings and numbers are written as JSON writes them."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


def _config(token: dict[str, str], known: dict[str, list[Any]]) -> str:
    """schemathesis.toml: who sends what, and the records that exist."""
    lines = [f"headers = {_toml({'Authorization': token['officer1']})}"]
    # 503 is the documented answer while Temporal or the loans' worker cannot answer (here:
    # the worker, the API, SQLite and this fuzzing share two cores, and a query may wait
    # past its 30 s); every other 5xx is a bug.
    lines.append('checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]')
    for name in known:
        binding = {"dictionary": name, "probability": KNOWN}
        lines.append(f'parameters."path.{name}" = {_toml(binding)}')
    for name, values in known.items():
        lines += [f"[dictionaries.{name}]", f"values = {_toml(values)}"]
    # Signing out revokes the token it is sent with: a token of its own.
    for path, username in {**SENT_BY, LOGOUT: "officer1 (signing out)"}.items():
        headers = {"Authorization": token[username]}
        lines += ["[[operations]]", f"include-path = {_toml(path)}", f"headers = {_toml(headers)}"]
    return "\n".join(lines) + "\n"


async def _tokens(loan_api: LoanApi) -> dict[str, str]:
    users = {"officer1", *SENT_BY.values()}
    token = {u: (await loan_api.login(u))["Authorization"] for u in sorted(users)}
    token["officer1 (signing out)"] = (await loan_api.login("officer1"))["Authorization"]
    return token


async def _known_records(loan_api: LoanApi) -> dict[str, list[Any]]:
    """A loan being investigated (with its tasks) and one in post-loan management."""
    applied = await loan_api.apply()
    repaying = await loan_api.apply()
    await loan_api.to_repaying(repaying)
    await loan_api.wait_for_stage(applied, "investigation")
    tasks = (await loan_api.get("officer1", "/tasks")).json()
    return {
        "loan_id": [applied, repaying],
        "task_id": [t["id"] for t in tasks],
        "village": [application_data(china_today())["applicant"]["village"]],
    }


async def test_every_operation_answers_as_documented(
    live_url: str, loan_api: LoanApi, app: FastAPI, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        _config(await _tokens(loan_api), await _known_records(loan_api)), encoding="utf-8"
    )
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{live_url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",  # one request at a time: the loans' worker shares this process and its cores
        "--request-timeout",
        "30",
        "--output-truncate",
        "false",
    ]
    run = await asyncio.create_subprocess_exec(
        *command, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await run.communicate()
    report = output.decode(errors="replace")
    assert run.returncode == 0, report[-30_000:]
    operations = sum(len(item) for item in app.openapi()["paths"].values())
    assert f"Selected: {operations}/{operations}" in report


def test_errors_are_documented_with_the_body_the_api_sends(app: FastAPI) -> None:
    document = app.openapi()
    error = {"$ref": "#/components/schemas/ErrorBody"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path != "/healthz":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == error, f"{method} {path} {status}"
    decision = document["paths"]["/loans/{loan_id}/decision"]["post"]["responses"]
    assert {"401", "403", "404", "409", "422", "503"} <= set(decision)
    assert {"401", "422", "429"} <= set(document["paths"]["/auth/token"]["post"]["responses"])
    assert set(document["paths"]["/auth/me"]["get"]["responses"]) == {"200", "401"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_money_is_a_decimal_string_and_the_empty_string_is_not(app: FastAPI) -> None:
    money = TypeAdapter(Money).json_schema()
    assert money["type"] == "string"
    for amount in ("30000", "30000.00", "0.5", "-12.30"):
        assert re.fullmatch(money["pattern"], amount), amount
    for amount in ("", "1e3", "1.234", "30,000", " 1"):
        assert not re.fullmatch(money["pattern"], amount), amount
    # What clients read: the application's amount, a payment, a collateral's value.
    schemas = app.openapi()["components"]["schemas"]
    for model, field in (
        ("LoanApplication", "amount"),
        ("PaymentBody", "amount"),
        ("PrepaymentBody", "amount"),
        ("Collateral", "appraised_value"),
    ):
        documented = schemas[model]["properties"][field]
        assert (documented["type"], documented["pattern"]) == ("string", money["pattern"])
    # Accepted as before: a JSON number too, and the same bounds.
    assert TypeAdapter(Money).validate_python(30000) == Decimal("30000")


async def test_a_body_that_is_not_utf8_is_bad_input(loan_api: LoanApi) -> None:
    """Schemathesis found it answered 400, which no operation documents: it is a 422."""
    headers = {**await loan_api.headers("officer1"), "Content-Type": "application/json"}
    response = await loan_api.http.post("/loans", content=b"\xff\xfe{", headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]["message"].startswith("malformed request body")
