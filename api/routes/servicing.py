"""Post-loan management (贷后管理): payments, collection, checks, warnings, class, closure.

Each step is an update of the loan's servicing workflow; its validator decides and names
the rule. The actor comes from the token, never from the body.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentActor, SessionDep, TemporalClientDep, require_roles
from api.errors import ApiError
from api.routes.loans import IdempotencyKey, LoanId
from api.schemas import HandoverResult, VillageBatch, VillageReportsResult
from api.services import servicing
from domain.inspection import InspectionFindings, WarningMeasure, WarningSignal
from domain.loan import Actor, LoanClass, Money, Role
from domain.text import ONE_LINE, SEVERAL_LINES, Text
from workflows.messages import (
    ClassifyLoan,
    DecidePrepayment,
    DecideWarning,
    DecideWriteOff,
    LoanStatus,
    MarkWilfulDefault,
    ProposeWriteOff,
    RaiseWarning,
    RecordCollectionAction,
    RecordNoticeReceipt,
    RecordPayment,
    ReportInspection,
    RequestExtension,
    RequestPrepayment,
    SubmitFinalEvaluation,
)
from workflows.servicing import LoanServicingWorkflow

router = APIRouter(prefix="/loans", tags=["post-loan"])
inspections_router = APIRouter(prefix="/inspections", tags=["post-loan"])


def staff(rule: str, *roles: Role) -> Callable[[Actor], Actor]:
    """``require_roles``, refusing with the rule of the step (403)."""
    check_role = require_roles(*roles)

    def check_step_role(actor: CurrentActor) -> Actor:
        try:
            return check_role(actor)
        except ApiError as refused:
            raise ApiError(403, refused.message, rule=rule) from None

    return check_step_role


Teller = Annotated[Actor, Depends(staff("P-2", Role.TELLER))]
Collector = Annotated[Actor, Depends(staff("D-1", Role.LOAN_OFFICER))]
ReceiptTaker = Annotated[Actor, Depends(staff("D-3", Role.LOAN_OFFICER))]
Inspector = Annotated[Actor, Depends(staff("K-5", Role.LOAN_OFFICER))]
WarningRaiser = Annotated[Actor, Depends(staff("W-1", Role.LOAN_OFFICER))]
# The branch head decides; once the signal has escalated, the post-loan manager (W-2).
WarningDecider = Annotated[Actor, Depends(staff("W-2", Role.BRANCH_HEAD, Role.POST_LOAN_MANAGER))]
Classifier = Annotated[Actor, Depends(staff("F-1", Role.REVIEWER))]
BranchHead = Annotated[Actor, Depends(staff("D-5", Role.BRANCH_HEAD))]
Evaluator = Annotated[Actor, Depends(staff("P-7", Role.LOAN_OFFICER))]
PrepaymentTaker = Annotated[Actor, Depends(staff("P-4", Role.LOAN_OFFICER))]
PrepaymentConsenter = Annotated[Actor, Depends(staff("P-4", Role.BRANCH_HEAD))]
WriteOffProposer = Annotated[Actor, Depends(staff("Z-1", Role.POST_LOAN_MANAGER))]
WriteOffApprover = Annotated[Actor, Depends(staff("Z-1", Role.APPROVER))]
ExtensionTaker = Annotated[Actor, Depends(staff("X-1", Role.LOAN_OFFICER))]
SupervisingHead = Annotated[Actor, Depends(staff("H-1", Role.BRANCH_HEAD))]
VillageReader = Annotated[
    Actor,
    Depends(staff("K-2", Role.LOAN_OFFICER, Role.POST_LOAN_MANAGER, Role.BRANCH_HEAD)),
]

TaskKey = Annotated[str, Field(min_length=1, max_length=120), ONE_LINE]
Note = Annotated[str, Field(min_length=1, max_length=2000), SEVERAL_LINES]
Village = Annotated[str, Path(min_length=1, max_length=100)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PaymentBody(_Body):
    amount: Money = Field(gt=0)
    # The counter's receipt number (收款凭证号): the payment's key, one receipt one deposit.
    reference: Text = Field(min_length=1, max_length=64)


class CollectionActionBody(_Body):
    task_key: TaskKey
    actions: list[Annotated[str, Field(min_length=1, max_length=200), ONE_LINE]] = Field(
        min_length=1, max_length=10
    )
    outcome: Note


class NoticeReceiptBody(_Body):
    notice_key: TaskKey
    received_on: date


class InspectionBody(_Body):
    task_key: TaskKey
    findings: InspectionFindings


class WarningBody(_Body):
    signal: WarningSignal
    note: Note


class WarningDecisionBody(_Body):
    task_key: TaskKey
    measure: WarningMeasure
    note: Note


class ClassificationBody(_Body):
    loan_class: LoanClass
    reason: Note


class WilfulDefaultBody(_Body):
    reason: Note


class FinalEvaluationBody(_Body):
    evaluation: Note


class PrepaymentBody(_Body):
    amount: Money = Field(gt=0)


class ConsentBody(_Body):
    consent: bool
    note: Note


class WriteOffBody(_Body):
    reason: Note


class WriteOffDecisionBody(_Body):
    approve: bool
    note: Note


class ExtensionBody(_Body):
    months: int = Field(gt=0, le=120)
    reason: Note
    guarantor_consent: bool


class HandoverBody(_Body):
    from_officer: Text = Field(min_length=1, max_length=64)
    to_officer: Text = Field(min_length=1, max_length=64)
    leaving_officer_signed: bool
    successor_signed: bool


class VillageReportsBody(_Body):
    reports: list[servicing.VillageReport] = Field(min_length=1, max_length=200)


@router.post("/{loan_id}/payments", response_model=LoanStatus)
async def record_payment(
    loan_id: LoanId,
    body: PaymentBody,
    teller: Teller,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """P-2/P-6: a repayment taken at the counter (柜面还款); arrears are collected from it
    at once, the rest waits in the settlement account for the next due date."""
    step = RecordPayment(actor=teller, amount=body.amount, reference=body.reference)
    return await servicing.step(
        session,
        client,
        teller,
        loan_id,
        LoanServicingWorkflow.record_payment,
        step,
        idempotency_key,
    )


@router.post("/{loan_id}/collection-actions", response_model=LoanStatus)
async def record_collection_action(
    loan_id: LoanId,
    body: CollectionActionBody,
    officer: Collector,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """D-1/D-3: what was done on a rung of the collection ladder, or on a notice whose
    receipt never came back."""
    step = RecordCollectionAction(
        actor=officer, task_key=body.task_key, actions=body.actions, outcome=body.outcome
    )
    return await servicing.step(
        session,
        client,
        officer,
        loan_id,
        LoanServicingWorkflow.record_collection_action,
        step,
        idempotency_key,
    )


@router.post("/{loan_id}/notice-receipts", response_model=LoanStatus)
async def record_notice_receipt(
    loan_id: LoanId,
    body: NoticeReceiptBody,
    officer: ReceiptTaker,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """D-3: the signed receipt (回执) of an overdue notice came back."""
    step = RecordNoticeReceipt(
        actor=officer, notice_key=body.notice_key, received_on=body.received_on
    )
    return await servicing.step(
        session,
        client,
        officer,
        loan_id,
        LoanServicingWorkflow.record_notice_receipt,
        step,
        idempotency_key,
    )


@router.post("/{loan_id}/inspections", response_model=LoanStatus)
async def report_inspection(
    loan_id: LoanId,
    body: InspectionBody,
    officer: Inspector,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """K-5: a post-loan check's report (贷后检查报告); misuse of funds calls the loan in."""
    step = ReportInspection(actor=officer, task_key=body.task_key, findings=body.findings)
    return await servicing.step(
        session,
        client,
        officer,
        loan_id,
        LoanServicingWorkflow.report_inspection,
        step,
        idempotency_key,
    )


@router.post("/{loan_id}/warnings", response_model=LoanStatus)
async def raise_warning(
    loan_id: LoanId,
    body: WarningBody,
    officer: WarningRaiser,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """W-1: a warning signal; the branch head gets the task (W-2)."""
    step = RaiseWarning(actor=officer, signal=body.signal, note=body.note)
    return await servicing.step(
        session,
        client,
        officer,
        loan_id,
        LoanServicingWorkflow.raise_warning,
        step,
        idempotency_key,
    )


@router.post("/{loan_id}/warning-decisions", response_model=LoanStatus)
async def decide_warning(
    loan_id: LoanId,
    body: WarningDecisionBody,
    actor: WarningDecider,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """W-2: the measure on a signal (the post-loan manager's once it has escalated)."""
    step = DecideWarning(actor=actor, task_key=body.task_key, measure=body.measure, note=body.note)
    return await servicing.step(
        session,
        client,
        actor,
        loan_id,
        LoanServicingWorkflow.decide_warning,
        step,
        idempotency_key,
    )


@router.post("/{loan_id}/classification", response_model=LoanStatus)
async def classify_loan(
    loan_id: LoanId,
    body: ClassificationBody,
    reviewer: Classifier,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """F-1: the reviewer's judgement puts the loan in a lower class, never a higher one."""
    step = ClassifyLoan(actor=reviewer, loan_class=body.loan_class, reason=body.reason)
    return await servicing.step(
        session,
        client,
        reviewer,
        loan_id,
        LoanServicingWorkflow.classify_loan,
        step,
        idempotency_key,
    )


@router.post("/{loan_id}/wilful-default", response_model=LoanStatus)
async def mark_wilful_default(
    loan_id: LoanId,
    body: WilfulDefaultBody,
    head: BranchHead,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """D-5: a borrower in arrears found a wilful defaulter (恶意逃废债); blacklisted."""
    step = MarkWilfulDefault(actor=head, reason=body.reason)
    return await servicing.step(
        session,
        client,
        head,
        loan_id,
        LoanServicingWorkflow.mark_wilful_default,
        step,
        idempotency_key,
    )


@router.post("/{loan_id}/prepayments", response_model=LoanStatus)
async def request_prepayment(
    loan_id: LoanId,
    body: PrepaymentBody,
    officer: PrepaymentTaker,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """P-4: the borrower asks to prepay (提前还款), partly or in full; with the policy's
    consent rule it waits for the branch head, then is collected from the account."""
    step = RequestPrepayment(actor=officer, amount=body.amount)
    return await servicing.step(
        session,
        client,
        officer,
        loan_id,
        LoanServicingWorkflow.request_prepayment,
        step,
        idempotency_key,
    )


@router.post("/{loan_id}/prepayment-decision", response_model=LoanStatus)
async def decide_prepayment(
    loan_id: LoanId,
    body: ConsentBody,
    head: PrepaymentConsenter,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """P-4: the cooperative's consent to a prepayment, or its refusal."""
    step = DecidePrepayment(actor=head, consent=body.consent, note=body.note)
    return await servicing.step(
        session,
        client,
        head,
        loan_id,
        LoanServicingWorkflow.decide_prepayment,
        step,
        idempotency_key,
    )


@router.post("/{loan_id}/write-off", response_model=LoanStatus)
async def propose_write_off(
    loan_id: LoanId,
    body: WriteOffBody,
    manager: WriteOffProposer,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """Z-1: a 损失 loan proposed for write-off (核销) by the post-loan manager."""
    step = ProposeWriteOff(actor=manager, reason=body.reason)
    return await servicing.step(
        session,
        client,
        manager,
        loan_id,
        LoanServicingWorkflow.propose_write_off,
        step,
        idempotency_key,
    )


@router.post("/{loan_id}/write-off-decision", response_model=LoanStatus)
async def decide_write_off(
    loan_id: LoanId,
    body: WriteOffDecisionBody,
    approver: WriteOffApprover,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """Z-1: the credit-management tier (the prefecture's approver) decides a write-off;
    recoveries still post afterwards (账销案存)."""
    step = DecideWriteOff(actor=approver, approve=body.approve, note=body.note)
    return await servicing.step(
        session,
        client,
        approver,
        loan_id,
        LoanServicingWorkflow.decide_write_off,
        step,
        idempotency_key,
    )


@router.post("/{loan_id}/final-evaluation", response_model=LoanStatus)
async def submit_final_evaluation(
    loan_id: LoanId,
    body: FinalEvaluationBody,
    officer: Evaluator,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """P-7: the final evaluation (终结评价) of a repaid loan, the one step a closed loan
    takes; the archive closes with it."""
    step = SubmitFinalEvaluation(actor=officer, evaluation=body.evaluation)
    return await servicing.step(
        session,
        client,
        officer,
        loan_id,
        LoanServicingWorkflow.submit_final_evaluation,
        step,
        idempotency_key,
        allow_closed=True,
    )


@router.post("/{loan_id}/extension-requests", response_model=LoanStatus)
async def request_extension(
    loan_id: LoanId,
    body: ExtensionBody,
    officer: ExtensionTaker,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> LoanStatus:
    """X-1: the borrower's request for an extension (展期申请), at least 15 days before
    maturity, with the guarantor's written consent; it then goes the original loan's
    approval route (X-4), whose review and decision tasks appear in the inbox."""
    step = RequestExtension(
        actor=officer,
        months=body.months,
        reason=body.reason,
        guarantor_consent=body.guarantor_consent,
    )
    return await servicing.step(
        session,
        client,
        officer,
        loan_id,
        LoanServicingWorkflow.request_extension,
        step,
        idempotency_key,
    )


@inspections_router.get("/villages", response_model=list[VillageBatch])
def village_inspections(actor: VillageReader, session: SessionDep) -> list[VillageBatch]:
    """K-2: micro-credit routine checks due in the branch, one visit per village."""
    return servicing.village_inspections(session, actor)


@inspections_router.post("/villages/{village}/reports", response_model=VillageReportsResult)
async def report_village(
    village: Village,
    body: VillageReportsBody,
    officer: Inspector,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> VillageReportsResult:
    """K-2/K-5: a village visit's reports, one per household, each sent to its own loan.

    The answer has one result per report: the loan's state, or the refusal with its
    status and rule. One household's refusal never loses the others' reports.
    """
    return await servicing.report_village(
        session, client, officer, village, body.reports, idempotency_key
    )


handovers_router = APIRouter(prefix="/handovers", tags=["post-loan"])


@handovers_router.post("", response_model=HandoverResult)
async def hand_over(
    body: HandoverBody,
    head: SupervisingHead,
    session: SessionDep,
    client: TemporalClientDep,
    idempotency_key: IdempotencyKey = None,
) -> HandoverResult:
    """H-1 责任移交: the leaving officer's loans and their open tasks move to the successor,
    signed by both officers and by the supervising branch head who sends it. Sent again
    with the same Idempotency-Key, it answers as the first time."""
    return await servicing.hand_over(
        session,
        client,
        head,
        body.from_officer,
        body.to_officer,
        body.leaving_officer_signed,
        body.successor_signed,
        idempotency_key,
    )
