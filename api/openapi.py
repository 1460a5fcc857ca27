"""The OpenAPI document, with every error the API answers and the body it answers with.

Which errors an operation can give follows from how it is built, so it is read from the
route itself rather than written on each one:

- 401 when it needs a signed-in user (the bearer scheme is among its dependencies);
- 403 when a dependency checks the actor's role (it stands between the route and who is
  signed in), or it names a record (in its path) that another branch's staff may not see;
- 404 when it names a record in its path;
- 409 when it is a POST by a signed-in user to a record in its path or a loan in Temporal
  (a step, a claim, a notice; not the reads sent by POST in ``CHANGE_NOTHING``);
- 422 when it takes any input (the request is validated, then the rules run);
- 503 when it asks Temporal, which may be unreachable.

Every one of them has the body ``api/errors.py`` writes (``ErrorBody``). What the
rules cannot see is in ``ALSO``; the health check answers 503 with its report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal, get_args

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from api.deps import (
    CurrentActor,
    CurrentUser,
    PageOrBearerUser,
    TemporalConnectionDep,
    oauth2_scheme,
)


class ErrorItem(BaseModel):
    """One reason for the refusal: the field it concerns and the rule it breaks, if any."""

    field: str | None = Field(description="dotted path of the field, e.g. applicant.id_number")
    rule: str | None = Field(description="the rulebook ID, e.g. A-2")
    reason: str


class ErrorDetail(BaseModel):
    message: str
    rule: str | None = Field(description="the rule of the refusal as a whole, if one")
    errors: list[ErrorItem]


class ErrorBody(BaseModel):
    """Every error the API answers (``api/errors.py``)."""

    detail: ErrorDetail


class ServiceReport(BaseModel):
    ok: bool
    error: str | None = None
    address: str | None = None
    namespace: str | None = None


class HealthReport(BaseModel):
    """``GET /healthz``: how the API reaches its two dependencies."""

    status: Literal["ok", "degraded"]
    temporal: ServiceReport
    database: ServiceReport


ERROR_DESCRIPTIONS = {
    401: "Not signed in, or the token is invalid, expired or of an unknown user.",
    403: "Refused for who you are: your role, branch or authority; `rule` names the rule.",
    404: "No such record; `errors[].field` names the part of the path.",
    409: (
        "Refused for the state of things: the loan's stage, a step already taken, a task "
        "claimed by someone else; `rule` names the rule. Nothing has changed."
    ),
    422: (
        "Invalid input: each entry of `errors` names its field and, when a rule refuses, "
        "the rule. Nothing has changed."
    ),
    429: "Too many failed sign-ins for this name: wait the Retry-After seconds.",
    503: "Temporal is not reachable; try again shortly (with the same Idempotency-Key).",
}
HEADERS = {
    401: {"WWW-Authenticate": "Bearer"},
    429: {"Retry-After": "seconds to wait before the next try"},
}
# POSTs that change nothing: a conflict with the loan's state cannot refuse them.
CHANGE_NOTHING = frozenset({"/loans/{loan_id}/audit/verify"})
# What the rules cannot see, answered besides.
ALSO: dict[tuple[str, str], set[int]] = {
    ("POST", "/auth/token"): {401, 429},  # a wrong password; a name tried too often
    ("GET", "/loans/search"): {403},  # another branch asked for is refused, not filtered out
    ("POST", "/handovers"): {404},  # an officer who is no active user
}
# The health check answers 503 with its report, not with an error.
HEALTH = ("GET", "/healthz")
_ERROR = "#/components/schemas/ErrorBody"
_HEALTH_503 = {
    "description": "Temporal or the database does not answer: the same report, degraded.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HealthReport"}}},
}
_UNUSED = ("HTTPValidationError", "ValidationError")


def _call(alias: Any) -> Callable[..., Any]:
    """The function behind a dependency alias such as ``CurrentActor``."""
    dependency: Callable[..., Any] = get_args(alias)[1].dependency
    return dependency


# The dependencies that say who is signed in, and nothing more.
_WHO = frozenset(_call(alias) for alias in (CurrentUser, CurrentActor, PageOrBearerUser))
_TEMPORAL = _call(TemporalConnectionDep)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _checks_role(route: RouteContext) -> bool:
    """A dependency between the route and who is signed in: it may refuse them
    (``require_roles`` and the like)."""
    return any(
        any(sub.call in _WHO for sub in d.dependencies)
        for d in _dependants(route.dependant)
        if d is not route.dependant and d.call not in _WHO
    )


def error_statuses(route: RouteContext, method: str) -> set[int]:
    """The error statuses ``route`` can answer ``method`` with (see the module's rules)."""
    tree = list(_dependants(route.dependant))
    calls = {d.call for d in tree}
    path = {p.name for d in tree for p in d.path_params}
    inputs = [
        p for d in tree for p in (*d.path_params, *d.query_params, *d.header_params, *d.body_params)
    ]
    signed_in = oauth2_scheme in calls
    temporal = _TEMPORAL in calls
    statuses = set(ALSO.get((method, route.path_format or ""), ()))
    if signed_in:
        statuses.add(401)
        if _checks_role(route) or path:
            statuses.add(403)
        if method == "POST" and (path or temporal) and route.path_format not in CHANGE_NOTHING:
            statuses.add(409)
    if path:
        statuses.add(404)
    if inputs:
        statuses.add(422)
    if temporal:
        statuses.add(503)
    return statuses


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": _ERROR}}},
    }
    if status in HEADERS:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in HEADERS[status].items()
        }
    return response


def _add_models(schema: dict[str, Any]) -> None:
    _, defs = models_json_schema(
        [(ErrorBody, "serialization"), (HealthReport, "serialization")],
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(defs["$defs"])
    for name in _UNUSED:
        components.pop(name, None)


def _document(app: FastAPI, schema: dict[str, Any]) -> None:
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"][route.path_format][method.lower()]
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's own model, not the body we send
            for status in sorted(error_statuses(route, method)):
                responses[str(status)] = _error_response(status)
            if (method, route.path_format) == HEALTH:
                responses["503"] = _HEALTH_503
    _add_models(schema)


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe every error response (see the module's rules)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        _document(app, schema)  # idempotent: the same result however often it runs
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
