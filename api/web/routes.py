"""The staff pages (网页端): sign-in, my tasks, a task's form, a loan, the register.

Routes stay thin: they read the form, call the services the JSON API calls, and render.
A refusal from a workflow's validator is shown next to the form, with its rule; nothing
has changed, and the form keeps what was typed.
"""

from __future__ import annotations

import csv
import inspect
import io
import math
import re
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from adapters.notices import TITLES, NoticeKind
from adapters.notifications import date_cn, percent, yuan
from api.deps import SessionDep, SettingsDep, TemporalClientDep
from api.errors import KIND_STATUS, ApiError, temporal_away
from api.security import create_access_token, decode_access_token
from api.services import applications, audit, loans, notices, records, tasks
from api.services.tokens import revoke
from api.services.users import authenticate
from api.throttle import LoginThrottle, client_address
from api.web import labels
from api.web.forms import (
    APPLICATION,
    LOAN_ACTIONS,
    TASK_FORMS,
    StepCall,
    StepForm,
    echo,
    field_errors,
    read_form,
)
from api.web.session import (
    COOKIE,
    CsrfRejected,
    LoginRequired,
    WebActor,
    check_csrf,
    safe_next,
)
from domain.calendar import china_date
from domain.errors import RuleViolation
from domain.ids import mask_pii
from domain.loan import Actor, LoanApplication, Role, Stage
from settings import PROJECT_DIR
from store.models import Task

router = APIRouter(prefix="/ui", include_in_schema=False)

# Who may read a loan's audit trail: not the loan officers, who must stay blind to each
# other's investigation (I-1).
AUDIT_READERS = {Role.AUDITOR, Role.ADMIN, Role.BRANCH_HEAD, Role.REVIEWER, Role.APPROVER}
READ_ONLY = {Role.AUDITOR}
REQUEST_ID = re.compile(r"[!-~]{1,64}")  # as the Idempotency-Key header: printable ASCII
NOTICE_ISSUERS = {Role.LOAN_OFFICER, Role.POST_LOAN_MANAGER, Role.BRANCH_HEAD}
DONE_ON_LOAN = {
    "payment": "已登记还款",
    "warning": "已报告预警信号",
    "extension": "已提交展期申请",
    "receipt": "已登记回执",
}


def _environment(templates_dir: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)), autoescape=True, undefined=StrictUndefined
    )
    env.filters.update(
        yuan=yuan,
        percent=percent,
        date_cn=date_cn,
        stage=labels.stage_name,
        role=labels.role_name,
        task=labels.task_name,
        loan_class=labels.class_name,
        code=labels.code_name,
        masked=mask_pii,
    )
    return env


pages = Jinja2Templates(env=_environment(PROJECT_DIR / "templates" / "web"))


def _render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    base = {"actor": None, "csrf": getattr(request.state, "csrf", ""), "flash": None}
    return pages.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


def _today() -> date:
    return china_date(datetime.now(UTC))


# ---------------------------------------------------------------- sign-in


@router.get("", response_class=RedirectResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/ui/tasks", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return _render(
        request, "login.html.j2", {"next": safe_next(next), "error": None, "username": ""}
    )


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """The same answer for a wrong name and a wrong password; repeated failures wait."""
    throttle: LoginThrottle = request.app.state.login_throttle
    client = client_address(request)
    context = {"next": safe_next(next), "username": username}
    with throttle.one_at_a_time(client):
        wait = throttle.wait_seconds(username, client)
        if wait > 0:
            seconds = math.ceil(wait)
            return _render(
                request,
                "login.html.j2",
                {**context, "error": f"登录失败次数过多，请 {seconds} 秒后再试。"},
                status_code=429,
            )
        user = authenticate(session, username, password) if username and password else None
        if user is None:
            throttle.failed(username, client)
            error = {**context, "error": "用户名或密码错误。"}
            return _render(request, "login.html.j2", error, status_code=401)
        throttle.succeeded(username, client)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        create_access_token(user.username, settings),
        max_age=settings.access_token_minutes * 60,
        httponly=True,
        samesite="strict",
        secure=settings.environment == "production",
        path="/",
    )
    return response


@router.post("/logout")
async def logout(
    request: Request, actor: WebActor, session: SessionDep, settings: SettingsDep
) -> Response:
    """Revokes the session's token at once: the cookie, or the same token as a bearer token
    (a copy kept elsewhere), is refused from the next request on."""
    await check_csrf(request, settings)
    claims = decode_access_token(request.cookies[COOKIE], settings)  # WebActor checked it
    await run_in_threadpool(revoke, session, claims)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# ---------------------------------------------------------------- applications


@router.get("/applications/new", response_class=HTMLResponse)
def application_page(request: Request, actor: WebActor) -> HTMLResponse:
    """借款申请: the loan officer takes the household's application."""
    _check_officer(actor)
    defaults = {"credit_rating.rated_on": _today().isoformat(), "applicant.fixed_residence": "on"}
    return _application_response(request, actor, values=defaults)


@router.post("/applications", response_class=HTMLResponse)
async def apply(
    request: Request,
    actor: WebActor,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalClientDep,
) -> Response:
    await check_csrf(request, settings)
    _check_officer(actor)
    data = await request.form()
    try:
        application = LoanApplication.model_validate(read_form(APPLICATION, data))
    except ValidationError as invalid:
        errors = field_errors(APPLICATION, invalid)
        return _application_response(
            request, actor, values=echo(APPLICATION, data), errors=errors, status_code=422
        )
    try:
        created = await applications.apply_for_loan(
            session,
            client,
            request.app.state.policy,
            settings.task_queue,
            actor,
            application,
            _request_id(data),
        )
    except (RuleViolation, ApiError) as refused:
        found, status_code = _refusals(refused)
        return _application_response(
            request,
            actor,
            values=echo(APPLICATION, data),
            refusals=found,
            status_code=status_code,
        )
    # To the inbox, not the loan: intake has only just started and has nothing to show yet.
    return RedirectResponse(f"/ui/tasks?applied={created.loan_id}", status_code=303)


def _check_officer(actor: Actor) -> None:
    if actor.role is not Role.LOAN_OFFICER:
        raise ApiError(403, "借款申请由客户经理受理")


def _application_response(
    request: Request,
    actor: Actor,
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    refusals: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return _render(
        request,
        "application.html.j2",
        {
            "actor": actor,
            "form": APPLICATION,
            "values": values,
            "errors": errors or {},
            "refusals": refusals or [],
            "request_id": uuid.uuid4().hex,
        },
        status_code=status_code,
    )


def _request_id(data: Any) -> str | None:
    """The form's request id, the step's idempotency key; anything else is no key (the
    step's own is derived from what it asks, issue 9)."""
    request_id = str(data.get("request_id") or "")
    return request_id if REQUEST_ID.fullmatch(request_id) else None


def _refusals(refused: Exception) -> tuple[list[dict[str, Any]], int]:
    """A workflow's or a service's refusal as the form shows it, and its status."""
    if isinstance(refused, RuleViolation):
        return [r.model_dump(mode="json") for r in refused.refusals], KIND_STATUS[refused.kind]
    assert isinstance(refused, ApiError)
    return [
        {"rule": refused.rule or "", "message": refused.message, "field": refused.field}
    ], refused.status


# ---------------------------------------------------------------- my tasks


@router.get("/tasks", response_class=HTMLResponse)
def my_tasks(
    request: Request,
    actor: WebActor,
    session: SessionDep,
    stage: Annotated[str | None, Query(max_length=32)] = None,
    branch: Annotated[str | None, Query(max_length=16)] = None,
    due: Annotated[str | None, Query(max_length=10)] = None,
    overdue: bool = False,
    done: Annotated[str | None, Query(max_length=40)] = None,
    applied: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """我的待办: what this person may do now, soonest due first."""
    due_by = _date_filter(due, "due")
    found = tasks.my_tasks(session, actor, overdue_only=overdue)
    branches = sorted({t.branch_code for t in found})
    shown = [
        t
        for t in found
        if (not stage or t.stage == stage)
        and (not branch or t.branch_code == branch)
        and (due_by is None or (t.due_date is not None and t.due_date <= due_by))
    ]
    return _render(
        request,
        "tasks.html.j2",
        {
            "actor": actor,
            "tasks": shown,
            "stages": labels.STAGES,
            "branches": branches,
            "filters": {
                "stage": stage or "",
                "branch": branch or "",
                "due": due or "",
                "overdue": overdue,
            },
            "flash": f"已完成：贷款 {done}"
            if done
            else f"已受理：贷款 {applied}，准入检查通过后派发贷前调查任务"
            if applied
            else None,
            "read_only": actor.role in READ_ONLY,
        },
    )


def _date_filter(raw: str | None, field: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, f"{field} must be a date like 2026-12-31", field=field) from None


def _task_for(session: Any, actor: Actor, task_id: int) -> Task:
    """The task, if it is this person's to see: their branch, or every branch for auditors."""
    task = session.get(Task, task_id)
    if task is None:
        raise ApiError(404, f"没有编号为 {task_id} 的任务", field="task_id")
    if actor.role in (Role.AUDITOR, Role.ADMIN):
        return task
    if task.branch_code != actor.branch or task.role != actor.role:
        raise ApiError(
            403,
            f"任务 {task_id} 属于 {task.branch_code} 的{labels.role_name(task.role)}，不是您的任务",
        )
    return task


async def _loan_context(session: Any, client: Any, actor: Actor, loan_id: str) -> dict[str, Any]:
    detail = await loans.loan_detail(session, client, actor, loan_id)
    schedule = await run_in_threadpool(records.schedule, session, loan_id)
    return {"loan": detail.loan, "status": detail.workflow, "schedule": schedule}


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(
    task_id: int,
    request: Request,
    actor: WebActor,
    session: SessionDep,
    client: TemporalClientDep,
) -> HTMLResponse:
    task = await run_in_threadpool(_task_for, session, actor, task_id)
    return await _task_response(request, session, client, actor, task)


async def _task_response(
    request: Request,
    session: Any,
    client: Any,
    actor: Actor,
    task: Task,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    refusals: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    form = TASK_FORMS.get(task.kind)
    context = await _loan_context(session, client, actor, task.loan_id)
    return _render(
        request,
        "task.html.j2",
        {
            **context,
            "actor": actor,
            "task": task,
            "form": form if task.status == "open" and actor.role not in READ_ONLY else None,
            "action": f"/ui/tasks/{task.id}",
            "values": values or {},
            "errors": errors or {},
            "refusals": refusals or [],
            "request_id": uuid.uuid4().hex,
            "today": _today(),
        },
        status_code=status_code,
    )


@router.post("/tasks/{task_id}", response_class=HTMLResponse)
async def complete_task(
    task_id: int,
    request: Request,
    actor: WebActor,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalClientDep,
) -> Response:
    await check_csrf(request, settings)
    task = await run_in_threadpool(_task_for, session, actor, task_id)
    form = TASK_FORMS.get(task.kind)
    if form is None or actor.role in READ_ONLY:
        raise ApiError(403, "此任务不能在网页上办理")
    data = await request.form()
    call = StepCall(session, client, actor, task.loan_id, task.task_key, _request_id(data))
    problem = await _send(form, call, read_form(form, data))
    if problem is None:
        return RedirectResponse(f"/ui/tasks?done={task.loan_id}", status_code=303)
    errors, refusals, status_code = problem
    return await _task_response(
        request,
        session,
        client,
        actor,
        task,
        values=echo(form, data),
        errors=errors,
        refusals=refusals,
        status_code=status_code,
    )


async def _send(
    form: StepForm, call: StepCall, values: dict[str, Any]
) -> tuple[dict[str, str], list[dict[str, Any]], int] | None:
    """None when the workflow took the step; else the field errors, the refusals and a status."""
    try:
        model = form.model.model_validate(values)
    except ValidationError as invalid:
        return field_errors(form, invalid), [], 422
    try:
        await form.send(call, model)
    except (RuleViolation, ApiError) as refused:
        found, status_code = _refusals(refused)
        fields = {r["field"]: f"{r['message']}（{r['rule']}）" for r in found if r.get("field")}
        return fields, found, status_code
    return None


# ---------------------------------------------------------------- a loan


@router.get("/loans/{loan_id}", response_class=HTMLResponse)
async def loan_page(
    loan_id: str,
    request: Request,
    actor: WebActor,
    session: SessionDep,
    client: TemporalClientDep,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    return await _loan_response(request, session, client, actor, loan_id, done=done)


async def _loan_response(
    request: Request,
    session: Any,
    client: Any,
    actor: Actor,
    loan_id: str,
    *,
    open_action: str | None = None,
    done: str | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    refusals: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = await _loan_context(session, client, actor, loan_id)
    sessions = request.app.state.sessions
    ledger = await run_in_threadpool(records.ledger_entries, sessions, loan_id)
    messages = await run_in_threadpool(records.notifications, session, loan_id=loan_id)
    ui_url = request.app.state.settings.temporal_ui_url
    trail = (
        await audit.audit_trail(client, loan_id, ui_url=ui_url)
        if actor.role in AUDIT_READERS
        else None
    )
    book = notices.notice_book(sessions, request.app.state.settings)
    issued = await run_in_threadpool(notices.loan_notices, session, book, actor, loan_id)
    stage = context["loan"].stage if context["loan"] else None
    actions = {
        name: form
        for name, (role, form) in LOAN_ACTIONS.items()
        if role is actor.role and stage == Stage.REPAYING.value
    }
    return _render(
        request,
        "loan.html.j2",
        {
            **context,
            "actor": actor,
            "ledger": ledger,
            "messages": messages,
            "trail": trail,
            "actions": actions,
            "notices": issued,
            "notice_kinds": [(kind.value, TITLES[kind]) for kind in sorted(notices.ON_DEMAND)]
            if actor.role in NOTICE_ISSUERS and stage == Stage.REPAYING.value
            else [],
            "takes_receipts": actor.role is Role.LOAN_OFFICER,
            "flash": DONE_ON_LOAN.get(done or ""),
            "today": _today(),
            "open_action": open_action,
            "values": values or {},
            "errors": errors or {},
            "refusals": refusals or [],
            "request_id": uuid.uuid4().hex,
        },
        status_code=status_code,
    )


@router.post("/loans/{loan_id}/actions/{action}", response_class=HTMLResponse)
async def loan_action(
    loan_id: str,
    action: str,
    request: Request,
    actor: WebActor,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalClientDep,
) -> Response:
    await check_csrf(request, settings)
    if action not in LOAN_ACTIONS:
        raise ApiError(404, f"no action {action}", field="action")
    role, form = LOAN_ACTIONS[action]
    if actor.role is not role:
        raise ApiError(403, f"只有{labels.role_name(role)}可以办理“{form.title}”", rule=form.rule)
    data = await request.form()
    call = StepCall(session, client, actor, loan_id, None, _request_id(data))
    problem = await _send(form, call, read_form(form, data))
    if problem is None:
        return RedirectResponse(f"/ui/loans/{loan_id}?done={action}", status_code=303)
    errors, refusals, status_code = problem
    return await _loan_response(
        request,
        session,
        client,
        actor,
        loan_id,
        open_action=action,
        values=echo(form, data),
        errors=errors,
        refusals=refusals,
        status_code=status_code,
    )


@router.post("/loans/{loan_id}/notices", response_class=HTMLResponse)
async def issue_notice(
    loan_id: str,
    request: Request,
    actor: WebActor,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalClientDep,
) -> Response:
    """P-3/X-5: a notice issued from the loan page, then opened for printing."""
    await check_csrf(request, settings)
    if actor.role not in NOTICE_ISSUERS:
        raise ApiError(403, f"{labels.role_name(actor.role)}不能开具通知书")
    data = await request.form()
    try:
        kind = NoticeKind(str(data.get("kind") or ""))
    except ValueError:
        raise ApiError(422, "请选择通知书种类", field="kind") from None
    book = notices.notice_book(request.app.state.sessions, settings)
    try:
        notice, _ = await notices.issue_for_loan(session, client, book, actor, loan_id, kind, None)
    except (RuleViolation, ApiError) as refused:
        return await _refused_on_loan_page(request, session, client, actor, loan_id, refused)
    return RedirectResponse(f"/notices/{notice.number}", status_code=303)


@router.post("/notices/{number}/receipt", response_class=HTMLResponse)
async def record_receipt(
    number: str,
    request: Request,
    actor: WebActor,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalClientDep,
) -> Response:
    """D-3: the signed receipt slip came back; dated, once."""
    await check_csrf(request, settings)
    if actor.role is not Role.LOAN_OFFICER:
        raise ApiError(403, "回执由客户经理登记", rule="D-3")
    data = await request.form()
    received_on = _date_filter(str(data.get("received_on") or ""), "received_on")
    if received_on is None:
        raise ApiError(422, "请填写回执签收日期", rule="D-3", field="received_on")
    book = notices.notice_book(request.app.state.sessions, settings)
    row = await run_in_threadpool(notices.visible_notice, session, book, actor, number)
    assert row.loan_id is not None, "a village sheet has no receipt slip"
    try:
        await notices.record_receipt(session, client, book, actor, number, received_on)
    except (RuleViolation, ApiError) as refused:
        return await _refused_on_loan_page(request, session, client, actor, row.loan_id, refused)
    return RedirectResponse(f"/ui/loans/{row.loan_id}?done=receipt", status_code=303)


async def _refused_on_loan_page(
    request: Request, session: Any, client: Any, actor: Actor, loan_id: str, refused: Exception
) -> HTMLResponse:
    found, status_code = _refusals(refused)
    return await _loan_response(
        request,
        session,
        client,
        actor,
        loan_id,
        refusals=found,
        status_code=status_code,
        open_action="notices",
    )


@router.get("/loans/{loan_id}/audit.{fmt}")
async def export_audit(
    loan_id: str,
    fmt: str,
    actor: WebActor,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalClientDep,
) -> Response:
    """H-2: the trail as CSV or JSON, for those who may read it."""
    if actor.role not in AUDIT_READERS:
        raise ApiError(403, "客户经理不能查看审计记录（I-1 双人调查互不可见）", rule="I-1")
    if fmt not in ("csv", "json"):
        raise ApiError(404, f"no export as {fmt}", field="fmt")
    await run_in_threadpool(loans.get_loan_record, session, actor, loan_id)
    events = await audit.audit_trail(client, loan_id, ui_url=settings.temporal_ui_url)
    if fmt == "csv":
        body, media = audit.as_csv(events), "text/csv; charset=utf-8"
    else:
        body, media = audit.as_json(events), "application/json"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="audit-{loan_id}.{fmt}"'},
    )


# ---------------------------------------------------------------- the register

REGISTER_COLUMNS = (
    ("loan_id", "贷款编号"),
    ("stage", "状态"),
    ("branch_code", "机构"),
    ("officer", "客户经理"),
    ("applicant_name", "借款人"),
    ("id_number", "身份证号"),
    ("phone", "电话"),
    ("village", "村"),
    ("amount_requested", "申请金额"),
    ("amount_approved", "批准金额"),
    ("term_months", "期限（月）"),
    ("maturity_date", "到期日"),
    ("loan_class", "五级分类"),
    ("bucket", "逾期档"),
    ("days_past_due", "逾期天数"),
    ("principal_outstanding", "贷款余额"),
    ("arrears", "欠款"),
    ("penalty_interest", "罚息"),
    ("compound_interest", "复利"),
)


def _register(
    session: Any,
    actor: Actor,
    stage: str | None,
    branch: str | None,
    officer: str | None,
    overdue: bool,
) -> list[Any]:
    found = loans.list_loans(
        session,
        actor,
        stage=stage or None,
        branch=branch or None,
        officer=officer or None,
        limit=500,
    )
    return [loan for loan in found if not overdue or loan.days_past_due > 0]


@router.get("/register", response_class=HTMLResponse)
def register_page(
    request: Request,
    actor: WebActor,
    session: SessionDep,
    stage: Annotated[str | None, Query(max_length=32)] = None,
    branch: Annotated[str | None, Query(max_length=16)] = None,
    officer: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool = False,
) -> HTMLResponse:
    """贷款台账, masked (H-3), the branches this person may see."""
    shown = _register(session, actor, stage, branch, officer, overdue)
    query = request.url.query
    return _render(
        request,
        "register.html.j2",
        {
            "actor": actor,
            "loans": shown,
            "stages": labels.STAGES,
            "filters": {
                "stage": stage or "",
                "branch": branch or "",
                "officer": officer or "",
                "overdue": overdue,
            },
            "csv_url": "/ui/register.csv" + (f"?{query}" if query else ""),
        },
    )


@router.get("/register.csv")
def register_csv(
    actor: WebActor,
    session: SessionDep,
    stage: Annotated[str | None, Query(max_length=32)] = None,
    branch: Annotated[str | None, Query(max_length=16)] = None,
    officer: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool = False,
) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([title for _, title in REGISTER_COLUMNS])
    for loan in _register(session, actor, stage, branch, officer, overdue):
        row = loan.model_dump(mode="json")
        writer.writerow(["" if row[key] is None else row[key] for key, _ in REGISTER_COLUMNS])
    # A byte-order mark, so spreadsheet programs read the Chinese headings as UTF-8.
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="register.csv"'},
    )


# ---------------------------------------------------------------- errors as pages


def install_web_pages(app: FastAPI) -> None:
    """Mount the pages, and show errors on /ui/ paths as pages instead of JSON."""
    app.include_router(router)

    def _login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(exc.login_url, status_code=303)

    def _csrf(request: Request, exc: Exception) -> Response:
        return _error_page(request, 403, "表单已过期或来源不明，请返回页面刷新后重新提交。")

    app.add_exception_handler(LoginRequired, _login)
    app.add_exception_handler(CsrfRejected, _csrf)
    for kind in (ApiError, RuleViolation, RequestValidationError):
        _page_for_ui(app, kind)
    for failure in (RPCError, RPCTimeoutOrCancelledError):
        _page_when_temporal_away(app, failure)


def _page_for_ui(app: FastAPI, kind: type[Exception]) -> None:
    as_json = app.exception_handlers[kind]

    async def handler(request: Request, exc: Exception) -> Response:
        if not request.url.path.startswith("/ui/"):
            answer = as_json(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        if isinstance(exc, ApiError):
            return _error_page(request, exc.status, exc.message, exc.rule)
        if isinstance(exc, RuleViolation):
            return _error_page(request, KIND_STATUS[exc.kind], str(exc))
        assert isinstance(exc, RequestValidationError)
        fields = "；".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
        )
        return _error_page(request, 422, f"输入有误：{fields}")

    app.add_exception_handler(kind, handler)


def _page_when_temporal_away(app: FastAPI, kind: type[Exception]) -> None:
    """A page, not JSON, when a page's call to Temporal failed because it is away."""
    as_json = app.exception_handlers[kind]

    async def handler(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/ui/") and temporal_away(exc):
            return _error_page(request, 503, "工作流服务（Temporal）暂时无法连接，请稍后再试。")
        answer = as_json(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(kind, handler)


def _error_page(
    request: Request, status_code: int, message: str, rule: str | None = None
) -> Response:
    titles = {401: "请先登录", 403: "无权访问", 404: "未找到", 409: "无法办理", 422: "输入有误"}
    return _render(
        request,
        "error.html.j2",
        {
            "status_code": status_code,
            "title": titles.get(status_code, "出错了"),
            "message": message,
            "rule": rule,
        },
        status_code=status_code,
    )
