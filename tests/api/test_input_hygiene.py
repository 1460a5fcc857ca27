"""Input hygiene, walked over every request model: text and numbers before any rule runs.

The request models are found, not listed: the bodies of the app's routes, the web forms
(one per task kind and loan action, and the application), and the inputs of the loan
workflows' start, updates and signals (a step sent to Temporal is decoded by the same
models). Every text field reachable in them refuses NUL and the other control characters
naming the field, keeps line breaks only if it is a comment, and comes out NFC and trimmed;
every number refuses 10**20 at the field. A new plain ``str`` field fails here until it
takes a type of ``domain.text``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from fastapi.routing import iter_route_contexts
from httpx import AsyncClient, Response
from pydantic import BaseModel, TypeAdapter, ValidationError
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.web.forms import APPLICATION, LOAN_ACTIONS, TASK_FORMS
from domain.policy import Policy
from settings import Settings
from tests.api.conftest import LoanApi, Login, china_today, workflows_on_queue
from tests.samples import application_data
from workflows.loan import LoanWorkflow
from workflows.servicing import LoanServicingWorkflow

# Bodies that carry no text people type: sign-in credentials are compared byte for byte
# and never stored or shown (a password must not be normalised), and the codec's payloads
# are Temporal's opaque base64.
NOT_TEXT = {
    "POST /auth/token": "credentials",
    "POST /ui/login": "credentials",
    "POST /codec/decode": "Temporal payloads",
}
# The policy a loan pins is the operator's file, checked when it is loaded.
NOT_REQUESTS = (Policy,)
# Free text of several lines (domain.text.CommentText); every other text field is one line.
COMMENTS = {
    "comment",
    "reason",
    "note",
    "notes",
    "outcome",
    "evaluation",
    "household_assets_and_credit",
    "business_and_cash_flow",
    "repayment_ability_and_willingness",
    "guarantor_assessment",
    "collateral_assessment",
    "household_income",
    "health",
    "marriage",
}
# Refused everywhere: C0 and C1 controls, DEL, a lone surrogate, a bidirectional override.
CONTROLS = ["\x00", "\x1b", "\x7f", "\x85", "\ud800", "\u202e"]
# Fields whose pattern only a phone or account number can match.
PATTERNED = {"phone", "settlement_account"}

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Leaf:
    """A text or number field reachable in a request model: its path and its type."""

    path: Path
    annotation: Any

    @property
    def name(self) -> str:
        return next(str(part) for part in reversed(self.path) if isinstance(part, str))

    @property
    def field(self) -> str:
        """As the API's error body names it."""
        return ".".join(str(part) for part in self.path)


SCALARS = (str, int, Decimal)


def _is(leaf: Leaf, kind: type) -> bool:
    """A text leaf (``str``), or a number (``int`` or ``Decimal``)."""
    base = get_args(leaf.annotation)[0] if get_origin(leaf.annotation) else leaf.annotation
    return base is kind or (kind is int and base is Decimal)


def _leaves(annotation: Any, path: Path = ()) -> Iterator[Leaf]:
    """Every text and number reachable from ``annotation``; bools, dates, enums and
    literals are left out (nothing typed freely, nothing unbounded)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        # A list's own limits stay behind; a text or number keeps its constraints.
        yield from [Leaf(path, annotation)] if args[0] in SCALARS else _leaves(args[0], path)
    elif annotation in SCALARS:
        yield Leaf(path, annotation)
    elif origin in (Union, UnionType):
        for arg in args:
            if arg is not NoneType:
                yield from _leaves(arg, path)
    elif origin in (list, tuple, set, frozenset):
        yield from _leaves(args[0], (*path, 0))
    elif origin is dict:
        raise AssertionError(f"{path}: a dict in a request model; walk it or list it")
    elif (
        isinstance(annotation, type)
        and issubclass(annotation, BaseModel)
        and not issubclass(annotation, NOT_REQUESTS)
    ):
        for name, info in annotation.model_fields.items():
            typed = Annotated[(info.annotation, *info.metadata)] if info.metadata else None
            yield from _leaves(typed or info.annotation, (*path, name))


def _api_bodies() -> dict[str, type[BaseModel]]:
    app = create_app(Settings(environment="test"))
    bodies: dict[str, type[BaseModel]] = {}
    for route in iter_route_contexts(app.routes):
        body = getattr(route, "body_field", None)
        if body is not None:
            for method in sorted(route.methods or ()):
                bodies[f"{method} {route.path}"] = body.field_info.annotation
    stale = set(NOT_TEXT) - set(bodies)
    assert not stale, f"NOT_TEXT lists bodies no route takes: {stale}"
    return {name: model for name, model in bodies.items() if name not in NOT_TEXT}


def _web_forms() -> dict[str, type[BaseModel]]:
    forms = {f"form {kind}": form.model for kind, form in TASK_FORMS.items()}
    forms |= {f"form {action}": form.model for action, (_, form) in LOAN_ACTIONS.items()}
    return forms | {"form application": APPLICATION.model}


def _model(arg_types: list[type] | None) -> type[BaseModel]:
    """A handler's one input model (house style 5)."""
    assert arg_types is not None and len(arg_types) == 1, arg_types
    [model] = arg_types
    assert issubclass(model, BaseModel), model
    return model


def _workflow_inputs() -> dict[str, type[BaseModel]]:
    """The loan's start, and every update and signal of its two workflows."""
    inputs = {
        "start LoanWorkflow": _model(workflow._Definition.must_from_class(LoanWorkflow).arg_types)
    }
    for cls in (LoanWorkflow, LoanServicingWorkflow):
        defn = workflow._Definition.must_from_class(cls)
        inputs |= {f"step {name}": _model(u.arg_types) for name, u in defn.updates.items()}
        inputs |= {f"step {name}": _model(s.arg_types) for name, s in defn.signals.items()}
    return inputs


REQUESTS = {**_api_bodies(), **_web_forms(), **_workflow_inputs()}
LEAVES = {name: list(_leaves(model)) for name, model in REQUESTS.items()}
TEXT = [(name, leaf) for name, leaves in LEAVES.items() for leaf in leaves if _is(leaf, str)]
NUMBERS = [(name, leaf) for name, leaves in LEAVES.items() for leaf in leaves if _is(leaf, int)]


def _partial(path: Path, value: Any) -> Any:
    """Just enough data to put ``value`` at ``path`` (other fields missing)."""
    if not path:
        return value
    head, *rest = path
    inner = _partial(tuple(rest), value)
    return [inner] if isinstance(head, int) else {head: inner}


def _errors_at(model: type[BaseModel], leaf: Leaf, value: Any) -> list[dict[str, Any]]:
    try:
        model.model_validate(_partial(leaf.path, value))
    except ValidationError as invalid:
        return [dict(e) for e in invalid.errors() if e["loc"] == leaf.path]
    return []


def test_the_walk_reaches_every_kind_of_request() -> None:
    kinds = {name.split()[0] for name in REQUESTS}
    assert kinds == {"POST", "form", "step", "start"}
    assert len(TEXT) > 150 and len(NUMBERS) > 20, (len(TEXT), len(NUMBERS))
    found = {(name, leaf.field) for name, leaf in TEXT}
    for expected in [
        ("POST /loans", "applicant.name"),
        ("POST /loans", "applicant.village"),
        ("POST /loans", "applicant.household_id"),
        ("POST /loans", "guarantors.0.name"),
        ("POST /loans/{loan_id}/decision", "conditions.0"),
        ("POST /inspections/villages/{village}/reports", "reports.0.findings.notes"),
        ("form application", "applicant.name"),
        ("form collect", "actions.0"),
        ("step decide_loan", "actor.name"),
        ("step hand_over", "successor.username"),
        ("start LoanWorkflow", "application.applicant.name"),
    ]:
        assert expected in found, expected


@pytest.mark.parametrize("char", CONTROLS, ids=[f"U+{ord(c):04X}" for c in CONTROLS])
def test_every_text_field_refuses_control_characters_naming_the_field(char: str) -> None:
    accepted = []
    for name, leaf in TEXT:
        errors = _errors_at(REQUESTS[name], leaf, f"张{char}三")
        if [e["type"] for e in errors] != ["control_character"]:
            accepted.append(f"{name}: {leaf.field}")
        else:
            assert f"U+{ord(char):04X}" in errors[0]["msg"]
    assert not accepted, "control character not refused at:\n" + "\n".join(accepted)


def test_comments_keep_their_lines_and_other_text_is_one_line() -> None:
    wrong = []
    for name, leaf in TEXT:
        adapter: TypeAdapter[str] = TypeAdapter(leaf.annotation)
        if leaf.name in COMMENTS:
            kept = adapter.validate_python("  第一行\r\n\t第二行  ")
            if kept != "第一行\n\t第二行":
                wrong.append(f"{name}: {leaf.field} gave {kept!r}")
        elif [e["type"] for e in _errors_at(REQUESTS[name], leaf, "第一行\n第二行")] != [
            "control_character"
        ]:
            wrong.append(f"{name}: {leaf.field} took a line break")
    assert not wrong, "\n".join(wrong)


def test_text_is_normalised_to_nfc_and_trimmed() -> None:
    typed = "\u3000 张三e\u0301村十 "  # an accent typed as its own code point
    wrong, patterned = [], set()
    for name, leaf in TEXT:
        try:
            cleaned = TypeAdapter(leaf.annotation).validate_python(typed)
        except ValidationError as invalid:
            types = {e["type"] for e in invalid.errors()}
            if types == {"string_pattern_mismatch"}:
                patterned.add(leaf.name)
            else:
                wrong.append(f"{name}: {leaf.field} refused it: {types}")
            continue
        if cleaned not in ("张三\u00e9村十", "张三\u00c9村十"):  # an ID number is upper-cased
            wrong.append(f"{name}: {leaf.field} gave {cleaned!r}")
    assert not wrong, "\n".join(wrong)
    assert patterned == PATTERNED


def test_every_number_is_bounded() -> None:
    unbounded = []
    for name, leaf in NUMBERS:
        try:
            TypeAdapter(leaf.annotation).validate_python(10**20)
        except ValidationError:
            continue
        unbounded.append(f"{name}: {leaf.field}")
    assert not unbounded, "10**20 accepted at:\n" + "\n".join(unbounded)


# --- through HTTP: refused at the edge, nothing started -------------------------------


@pytest.fixture
def staff(http: AsyncClient, login: Login) -> LoanApi:
    """The loan endpoints without a worker: a refused application never reaches Temporal."""
    return LoanApi(http, login)


def _items(response: Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    items: list[dict[str, Any]] = response.json()["detail"]["errors"]
    return items


async def _nothing_started(api: LoanApi, env: WorkflowEnvironment, settings: Settings) -> None:
    assert (await api.get("officer1", "/loans")).json() == []
    assert await workflows_on_queue(env, settings.task_queue) == []


@pytest.mark.parametrize("field", ["name", "village", "household_id"])
async def test_a_nul_in_the_applicant_is_a_422_naming_the_field(
    staff: LoanApi, temporal_dev_env: WorkflowEnvironment, api_settings: Settings, field: str
) -> None:
    data = application_data(china_today())
    data["applicant"][field] = data["applicant"][field][:2] + "\x00" + data["applicant"][field][2:]

    response = await staff.post("officer1", "/loans", data)

    [item] = _items(response)
    assert item["field"] == f"applicant.{field}"
    assert "U+0000 at character 3 is not allowed" in item["reason"]
    await _nothing_started(staff, temporal_dev_env, api_settings)


async def test_an_absurd_term_is_a_422_with_a_readable_message(
    staff: LoanApi, temporal_dev_env: WorkflowEnvironment, api_settings: Settings
) -> None:
    data = application_data(china_today(), term_months=10**20)

    response = await staff.post("officer1", "/loans", data)

    [item] = _items(response)
    assert item == {
        "field": "term_months",
        "rule": None,
        "reason": "Input should be less than or equal to 600",
    }
    await _nothing_started(staff, temporal_dev_env, api_settings)


async def test_a_term_beyond_the_policy_is_refused_before_the_age_rule(
    staff: LoanApi, temporal_dev_env: WorkflowEnvironment, api_settings: Settings
) -> None:
    # 40 years old: 400 months would also break E-1 (age + term <= 60), E-14 and more.
    data = application_data(china_today(), term_months=400)

    response = await staff.post("officer1", "/loans", data)

    [item] = _items(response)
    assert (item["rule"], item["field"]) == ("E-10", "term_months")
    assert item["reason"] == (
        "term 400 months exceeds the maximum 60 months, the longest term the policy allows any loan"
    )
    await _nothing_started(staff, temporal_dev_env, api_settings)
