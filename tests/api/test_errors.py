"""Every error leaves the API in one shape (api/errors.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, HTTPException
from httpx import ASGITransport, AsyncClient, Response
from pydantic import BaseModel, Field
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from domain.errors import Refusal, RuleViolation, ViolationKind, violation


class Inner(BaseModel):
    term_months: int


class Body(BaseModel):
    amount: int = Field(gt=0)
    name: str
    inner: Inner


@pytest.fixture
def test_routes(app: FastAPI) -> None:
    router = APIRouter(prefix="/_test")

    @router.post("/body")
    def body(payload: Body, page: int = 1) -> dict[str, int]:
        return {"amount": payload.amount, "page": page}

    @router.get("/violation/{kind}")
    def rule_violation(kind: ViolationKind) -> None:
        raise violation("E-7", f"a {kind.value} violation", kind=kind, field="applicant")

    @router.get("/violations")
    def violations() -> None:
        raise RuleViolation(
            [
                Refusal(rule="E-9", message="amount above 50% of income", field="amount"),
                Refusal(rule="E-10", message="term below 6 months", field="term_months"),
            ]
        )

    @router.get("/api-error")
    def api_error() -> None:
        raise ApiError(404, "no loan L-1", rule=None, field="loan_id")

    @router.get("/http-exception")
    def http_exception() -> None:
        raise HTTPException(418, "short and stout", headers={"X-Teapot": "yes"})

    @router.get("/crash")
    def crash() -> None:
        raise KeyError("secret internals 11010519491231002X")

    @router.get("/temporal-gone")
    def temporal_gone() -> None:
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    @router.get("/temporal-away/{how}")
    def temporal_away(how: str) -> None:
        raise TEMPORAL_AWAY[how]

    app.include_router(router)
    pages = APIRouter(prefix="/ui/_test")
    pages.add_api_route("/temporal-away/{how}", temporal_away)
    app.include_router(pages)


# A client connected before Temporal went away: the server's port refuses, a connection is
# reset mid-call (the server killed, or a balancer with no server behind it), or a call
# (an update) runs out of time.
TEMPORAL_AWAY: dict[str, Exception] = {
    "refused": RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b""),
    "reset": RPCError("transport error", RPCStatusCode.UNKNOWN, b""),
    "timeout": WorkflowUpdateRPCTimeoutOrCancelledError(),
    # A query while no worker has polled the loans' queue lately (restarting, overloaded).
    "no worker": RPCError(
        "no poller seen for task queue recently, worker may be down",
        RPCStatusCode.FAILED_PRECONDITION,
        b"",
    ),
}


pytestmark = pytest.mark.usefixtures("test_routes")


def _errors(response: Response) -> list[dict[str, Any]]:
    """The body's error items, after checking the body has the one shape."""
    detail = response.json()["detail"]
    assert set(detail) == {"message", "rule", "errors"}
    for item in detail["errors"]:
        assert set(item) == {"field", "rule", "reason"}
    return detail["errors"]


async def test_malformed_json_is_422_without_a_field(http: AsyncClient) -> None:
    response = await http.post(
        "/_test/body", content=b'{"amount": 5,', headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    [error] = _errors(response)
    assert error["field"] is None
    assert error["reason"].startswith("malformed JSON: ")


async def test_wrong_type_names_the_field(http: AsyncClient) -> None:
    response = await http.post(
        "/_test/body", json={"amount": "lots", "name": "x", "inner": {"term_months": "six"}}
    )

    assert response.status_code == 422
    errors = _errors(response)
    assert {e["field"] for e in errors} == {"amount", "inner.term_months"}
    assert all(e["reason"] and e["rule"] is None for e in errors)
    assert "amount" in response.json()["detail"]["message"]


async def test_missing_field_names_the_field(http: AsyncClient) -> None:
    response = await http.post("/_test/body", json={"amount": 5, "inner": {}})

    assert response.status_code == 422
    errors = {e["field"]: e["reason"] for e in _errors(response)}
    assert errors == {"name": "Field required", "inner.term_months": "Field required"}


async def test_query_parameter_error_drops_the_location_prefix(http: AsyncClient) -> None:
    response = await http.post(
        "/_test/body?page=first", json={"amount": 5, "name": "x", "inner": {"term_months": 6}}
    )

    assert response.status_code == 422
    assert [e["field"] for e in _errors(response)] == ["page"]


@pytest.mark.parametrize(
    ("kind", "status"),
    [("invalid", 422), ("conflict", 409), ("forbidden", 403), ("not_found", 404)],
)
async def test_rule_violation_kind_sets_the_status(
    http: AsyncClient, kind: str, status: int
) -> None:
    response = await http.get(f"/_test/violation/{kind}")

    assert response.status_code == status
    assert response.json() == {
        "detail": {
            "message": f"a {kind} violation",
            "rule": "E-7",
            "errors": [{"field": "applicant", "rule": "E-7", "reason": f"a {kind} violation"}],
        }
    }


async def test_every_refusal_is_listed(http: AsyncClient) -> None:
    response = await http.get("/_test/violations")

    assert response.status_code == 422
    assert response.json()["detail"]["rule"] == "E-9"
    assert _errors(response) == [
        {"field": "amount", "rule": "E-9", "reason": "amount above 50% of income"},
        {"field": "term_months", "rule": "E-10", "reason": "term below 6 months"},
    ]


async def test_api_error_keeps_its_status_and_field(http: AsyncClient) -> None:
    response = await http.get("/_test/api-error")

    assert response.status_code == 404
    assert _errors(response) == [{"field": "loan_id", "rule": None, "reason": "no loan L-1"}]


async def test_http_exception_keeps_status_and_headers(http: AsyncClient) -> None:
    response = await http.get("/_test/http-exception")

    assert response.status_code == 418
    assert response.headers["x-teapot"] == "yes"
    assert response.json()["detail"]["message"] == "short and stout"


async def test_unknown_route_is_404_in_the_same_shape(http: AsyncClient) -> None:
    response = await http.get("/no/such/route")

    assert response.status_code == 404
    assert _errors(response)[0]["reason"] == "Not Found"


async def test_lost_temporal_connection_is_503(http: AsyncClient) -> None:
    response = await http.get("/_test/temporal-gone")

    assert response.status_code == 503
    assert "Temporal" in response.json()["detail"]["message"]


@pytest.mark.parametrize("how", sorted(TEMPORAL_AWAY))
async def test_temporal_going_away_after_connecting_is_503_not_500(
    http: AsyncClient, how: str
) -> None:
    response = await http.get(f"/_test/temporal-away/{how}")
    assert response.status_code == 503
    assert _errors(response)[0]["reason"] == "Temporal is not reachable; try again shortly"

    page = await http.get(f"/ui/_test/temporal-away/{how}")  # a page answers with a page
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "Temporal" in page.text


@pytest.fixture
async def lenient_http(app: FastAPI) -> AsyncIterator[AsyncClient]:
    # Starlette re-raises after answering 500 so servers can log it; see the response instead.
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_unexpected_error_is_a_generic_500_with_the_traceback_logged(
    lenient_http: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        response = await lenient_http.get("/_test/crash")

    assert response.status_code == 500
    assert response.json() == {
        "detail": {
            "message": "internal server error",
            "rule": None,
            "errors": [{"field": None, "rule": None, "reason": "internal server error"}],
        }
    }
    assert "secret internals" not in response.text
    [record] = [r for r in caplog.records if r.name == "api.errors"]
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    assert "/_test/crash" in record.getMessage()
