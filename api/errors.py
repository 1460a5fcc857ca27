"""The one place where errors become HTTP responses (house style 15).

Every error body has the same shape::

    {"detail": {"message": str, "rule": str | None,
                "errors": [{"field": str | None, "rule": str | None, "reason": str}]}}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from domain.errors import RuleViolation, ViolationKind

logger = logging.getLogger(__name__)

KIND_STATUS = {
    ViolationKind.INVALID: 422,
    ViolationKind.CONFLICT: 409,
    ViolationKind.FORBIDDEN: 403,
    ViolationKind.NOT_FOUND: 404,
}
# The request part FastAPI puts first in a validation error's location.
_LOCATION_ROOTS = frozenset({"body", "query", "path", "header", "cookie"})
_TEMPORAL_DOWN = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})
# What the client reports when a connection is reset or closed mid-call (the server was
# killed, or a balancer in front of it has no server to hand the call to).
_TRANSPORT_FAILURE = (RPCStatusCode.UNKNOWN, "transport error")
TEMPORAL_AWAY = "Temporal is not reachable; try again shortly"
# What a query answers when no worker has polled the loans' queue lately (workers restarting
# or overloaded): the loan is there, its worker is away for now.
_NO_WORKER = "no poller seen for task queue recently"


class ApiError(Exception):
    """An HTTP-level failure raised by services and dependencies (unknown loan, Temporal down)."""

    def __init__(
        self,
        status: int,
        message: str,
        rule: str | None = None,
        field: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.rule = rule
        self.field = field
        self.headers = dict(headers) if headers else None


def error_body(
    message: str, rule: str | None = None, errors: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    if errors is None:
        errors = [{"field": None, "rule": rule, "reason": message}]
    return {"detail": {"message": message, "rule": rule, "errors": list(errors)}}


def _response(
    status: int,
    body: dict[str, Any],
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)


async def _rule_violation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RuleViolation)
    errors = [{"field": r.field, "rule": r.rule, "reason": r.message} for r in exc.refusals]
    message = "; ".join(r.message for r in exc.refusals)
    return _response(KIND_STATUS[exc.kind], error_body(message, exc.rule, errors))


def _validation_item(error: Mapping[str, Any]) -> dict[str, Any]:
    if error.get("type") == "json_invalid":
        detail = (error.get("ctx") or {}).get("error") or error.get("msg", "")
        return {"field": None, "rule": None, "reason": f"malformed JSON: {detail}"}
    loc = [str(part) for part in error.get("loc", ())]
    if loc and loc[0] in _LOCATION_ROOTS:
        loc = loc[1:]
    return {"field": ".".join(loc) or None, "rule": None, "reason": str(error.get("msg", ""))}


async def _request_validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [_validation_item(e) for e in exc.errors()]
    fields = [e["field"] for e in errors if e["field"]]
    message = "invalid request" + (f": {', '.join(fields)}" if fields else "")
    return _response(422, error_body(message, None, errors))


async def _http_exception(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code in (204, 304) or exc.status_code < 200:
        return Response(status_code=exc.status_code, headers=exc.headers)
    if exc.status_code == 400:  # a body FastAPI cannot read (not UTF-8): bad input, as JSON is
        return _response(422, error_body(f"malformed request body: {exc.detail}"), exc.headers)
    return _response(exc.status_code, error_body(str(exc.detail)), exc.headers)


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    errors = [{"field": exc.field, "rule": exc.rule, "reason": exc.message}]
    return _response(exc.status, error_body(exc.message, exc.rule, errors), exc.headers)


def temporal_away(exc: Exception) -> bool:
    """A call by a client connected earlier that failed because the server has gone away
    since, or did not answer in time (it may be restarting): 503, not a bug."""
    if isinstance(exc, RPCTimeoutOrCancelledError):
        return True
    if not isinstance(exc, RPCError):
        return False
    return (
        exc.status in _TEMPORAL_DOWN
        or (exc.status, exc.message) == _TRANSPORT_FAILURE
        or (exc.status is RPCStatusCode.FAILED_PRECONDITION and _NO_WORKER in exc.message)
    )


async def _rpc_error(request: Request, exc: Exception) -> Response:
    if temporal_away(exc):
        logger.warning("Temporal call failed on %s %s: %r", request.method, request.url.path, exc)
        return _response(503, error_body(TEMPORAL_AWAY))
    assert isinstance(exc, RPCError)
    if exc.status is RPCStatusCode.INVALID_ARGUMENT:  # e.g. a payload over Temporal's limits
        return _response(422, error_body(f"the workflow service refused the request: {exc}"))
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _response(500, error_body("internal server error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RuleViolation, _rule_violation)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RPCError, _rpc_error)
    app.add_exception_handler(RPCTimeoutOrCancelledError, _rpc_error)
    app.add_exception_handler(Exception, _unexpected)
