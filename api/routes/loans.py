"""Loans: apply, the register (台账), each human step, and what the loan has produced."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, status
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.deps import CurrentActor, SessionDep, TemporalClientDep, require_roles
from api.errors import ApiError
from api.schemas import (
    AuditEvent,
    LoanCreated,
    LoanDetail,
    LoanSummary,
    LoanWorkflowView,
    NotificationView,
)
from api.services import applications, audit, loans, records
from domain.loan import (
    Actor,
    ContractSigning,
    Decision,
    Installment,
    InvestigationReport,
    LoanApplication,
    Material,
    Review,
    Role,
)
from domain.text import CommentText
from workflows.loan import LoanWorkflow
from workflows.messages import (
    ConfirmAsBranchHead,
    DecideLoan,
    LoanStatus,
    SignContract,
    SubmitInvestigation,
    SubmitReview,
    SupplyMaterials,
    WithdrawApplication,
)

router = APIRouter(prefix="/loans", tags=["loans"])

LoanId = Annotated[str, Path(min_length=1, max_length=40)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=100,
        pattern=r"^[!-~]+$",
        description="The step's key (printable ASCII): sent again, with the same body, it "
        "returns the first answer and has no second effect, whatever the loan's stage now; "
        "with another body it is refused (409). Without it the key is derived from the "
        "request and the day; a payment's receipt reference is always its key.",
    ),
]
Officer = Annotated[Actor, Depends(require_roles(Role.LOAN_OFFICER))]
# Loan officers are left out: the trail would show one investigator the other's report (I-1).
Overseer = Annotated[Actor, Depends(require_roles(Role.AUDITOR, Role.ADMIN))]
AuditReader = Annotated[
    Actor,
    Depends(
        require_roles(Role.AUDITOR, Role.ADMIN, Role.BRANCH_HEAD, Role.REVIEWER, Role.APPROVER)
    ),
]


def _not_read_only(actor: CurrentActor) -> Actor:
    """An auditor (稽核) reads every loan and changes none: refused before the step is read."""
    if actor.role is Role.AUDITOR:
        raise ApiError(403, "an auditor reads loans and tasks and changes nothing")
    return actor


# Who may send a step (the workflow's validator then decides whether they may take it).
StepTaker = Annotated[Actor, Depends(_not_read_only)]


class MaterialsBody(BaseModel):
    materials: list[Material] = Field(min_length=1, max_length=len(Material))


class WithdrawalBody(BaseModel):
    reason: CommentText = Field(min_length=1, max_length=500)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=LoanCreated)
async def apply_for_loan(
    app: LoanApplication,
    request: Request,
    officer: Officer,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanCreated:
    """Take a household's application (借款申请); the loan officer is the one signed in.
    Sent again with the same Idempotency-Key, it answers with the loan first started."""
    state = request.app.state
    return await applications.apply_for_loan(
        session, client, state.policy, state.settings.task_queue, officer, app, idempotency_key
    )


@router.get("", response_model=list[LoanSummary])
def list_loans(
    actor: CurrentActor,
    session: SessionDep,
    stage: str | None = None,
    branch: str | None = None,
    officer: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[LoanSummary]:
    """The loan register (贷款台账), masked (H-3), limited to the branches the actor may see."""
    return loans.list_loans(
        session, actor, stage=stage, branch=branch, officer=officer, limit=limit, offset=offset
    )


Code = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,40}$")]


@router.get("/search", response_model=list[LoanWorkflowView])
async def search_loan_workflows(
    actor: CurrentActor,
    session: SessionDep,
    client: TemporalClientDep,
    stage: Code = None,
    branch: Code = None,
    pending_role: Code = None,
    officer: Code = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[LoanWorkflowView]:
    """Loans found in Temporal by their search attributes (LoanStage, LoanBranch, ...)."""
    return await loans.search_workflows(
        session,
        client,
        actor,
        stage=stage,
        branch=branch,
        pending_role=pending_role,
        officer=officer,
        limit=limit,
    )


@router.get("/{loan_id}", response_model=LoanDetail)
async def get_loan(
    loan_id: LoanId, actor: CurrentActor, session: SessionDep, client: TemporalClientDep
) -> LoanDetail:
    return await loans.loan_detail(session, client, actor, loan_id)


@router.post("/{loan_id}/materials", response_model=LoanStatus)
async def supply_materials(
    loan_id: LoanId,
    body: MaterialsBody,
    actor: StepTaker,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """E-13: hand in missing materials."""
    step = SupplyMaterials(actor=actor, materials=body.materials)
    return await loans.perform_step(
        session, client, actor, loan_id, LoanWorkflow.supply_materials, step, idempotency_key
    )


@router.post("/{loan_id}/investigations", response_model=LoanStatus)
async def submit_investigation(
    loan_id: LoanId,
    report: InvestigationReport,
    actor: StepTaker,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """I-1..I-3: one officer's on-site investigation report; the two stay blind to each other."""
    step = SubmitInvestigation(
        actor=actor,
        report=report,
        task_key=loans.investigation_task_key(session, actor, loan_id),
    )
    return await loans.perform_step(
        session, client, actor, loan_id, LoanWorkflow.submit_investigation, step, idempotency_key
    )


@router.post("/{loan_id}/review", response_model=LoanStatus)
async def review_loan(
    loan_id: LoanId,
    review: Review,
    actor: StepTaker,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """A-2: the reviewer's opinion, at the county or the prefecture."""
    step = SubmitReview(actor=actor, review=review)
    return await loans.perform_step(
        session, client, actor, loan_id, LoanWorkflow.review_loan, step, idempotency_key
    )


@router.post("/{loan_id}/branch-confirmation", response_model=LoanStatus)
async def confirm_as_branch_head(
    loan_id: LoanId,
    review: Review,
    actor: StepTaker,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """A-2: the branch head confirms a loan above the county limit."""
    step = ConfirmAsBranchHead(actor=actor, review=review)
    return await loans.perform_step(
        session, client, actor, loan_id, LoanWorkflow.confirm_as_branch_head, step, idempotency_key
    )


@router.post("/{loan_id}/decision", response_model=LoanStatus)
async def decide_loan(
    loan_id: LoanId,
    decision: Decision,
    actor: StepTaker,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """A-3: approve (perhaps less, with conditions), return to investigation, or reject."""
    step = DecideLoan(actor=actor, decision=decision)
    return await loans.perform_step(
        session, client, actor, loan_id, LoanWorkflow.decide_loan, step, idempotency_key
    )


@router.post("/{loan_id}/contract", response_model=LoanStatus)
async def sign_contract(
    loan_id: LoanId,
    signing: ContractSigning,
    actor: StepTaker,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """C-1/C-2: contracts signed and conditions met; the loan is then disbursed."""
    step = SignContract(actor=actor, signing=signing)
    return await loans.perform_step(
        session, client, actor, loan_id, LoanWorkflow.sign_contract, step, idempotency_key
    )


@router.post("/{loan_id}/withdrawal", response_model=LoanStatus)
async def withdraw_application(
    loan_id: LoanId,
    body: WithdrawalBody,
    actor: StepTaker,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """The borrower withdraws before disbursement; the loan officer records it."""
    step = WithdrawApplication(actor=actor, reason=body.reason)
    return await loans.perform_step(
        session, client, actor, loan_id, LoanWorkflow.withdraw_application, step, idempotency_key
    )


@router.get("/{loan_id}/schedule", response_model=list[Installment])
def get_schedule(loan_id: LoanId, actor: CurrentActor, session: SessionDep) -> list[Installment]:
    """C-4: the repayment schedule fixed at disbursement."""
    loans.get_loan_record(session, actor, loan_id)
    return records.schedule(session, loan_id)


@router.get("/{loan_id}/ledger", response_model=list[records.LedgerEntryView])
def get_ledger(
    loan_id: LoanId, actor: CurrentActor, session: SessionDep, request: Request
) -> list[records.LedgerEntryView]:
    """C-3: the loan's journal entries."""
    loans.get_loan_record(session, actor, loan_id)
    return records.ledger_entries(request.app.state.sessions, loan_id)


@router.get("/{loan_id}/notifications", response_model=list[NotificationView])
def get_notifications(
    loan_id: LoanId, actor: CurrentActor, session: SessionDep
) -> list[NotificationView]:
    """What was sent about the loan (SMS outbox, staff reminders); recipients masked (H-3)."""
    loans.get_loan_record(session, actor, loan_id)
    return records.notifications(session, loan_id=loan_id)


@router.get("/{loan_id}/audit", response_model=list[AuditEvent])
async def get_audit_trail(
    loan_id: LoanId,
    actor: AuditReader,
    request: Request,
    session: SessionDep,
    client: TemporalClientDep,
) -> list[AuditEvent]:
    """H-2: every human step with actor, time, decision, comment and policy version, and
    the automatic effects, each linked to its run's history in the Temporal Web UI."""
    return await _audit_trail(loan_id, actor, request, session, client)


class CsvResponse(PlainTextResponse):
    media_type = "text/csv"  # so the OpenAPI document says what the export is


@router.get("/{loan_id}/audit.csv", response_class=CsvResponse)
async def export_audit_trail(
    loan_id: LoanId,
    actor: AuditReader,
    request: Request,
    session: SessionDep,
    client: TemporalClientDep,
) -> PlainTextResponse:
    """H-2: the same trail as CSV, for a spreadsheet or the regulator."""
    body = audit.as_csv(await _audit_trail(loan_id, actor, request, session, client))
    return PlainTextResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{loan_id}.csv"'},
    )


@router.get("/{loan_id}/audit.json", response_class=Response)
async def download_audit_trail(
    loan_id: LoanId,
    actor: AuditReader,
    request: Request,
    session: SessionDep,
    client: TemporalClientDep,
) -> Response:
    """H-2: the same trail as a JSON file to download."""
    body = audit.as_json(await _audit_trail(loan_id, actor, request, session, client))
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="audit-{loan_id}.json"'},
    )


async def _audit_trail(
    loan_id: str, actor: Actor, request: Request, session: Session, client: Client
) -> list[AuditEvent]:
    await run_in_threadpool(loans.get_loan_record, session, actor, loan_id)
    ui_url = request.app.state.settings.temporal_ui_url
    return await audit.audit_trail(client, loan_id, ui_url=ui_url)


@router.post("/{loan_id}/audit/verify", response_model=list[audit.RunVerification])
async def verify_audit_trail(
    loan_id: LoanId,
    actor: Overseer,
    request: Request,
    session: SessionDep,
    client: TemporalClientDep,
) -> list[audit.RunVerification]:
    """H-2: replay the loan's history against the code deployed now: does it reproduce?"""
    await run_in_threadpool(loans.get_loan_record, session, actor, loan_id)
    settings = request.app.state.settings
    return await audit.verify(client, loan_id, settings.temporal_ui_url)
