"""Post-loan management (贷后管理) at the API: steps on repaying loans and K-2 village batches.

Each post-loan step goes to the loan's workflow through ``loans.perform_step`` (which finds
the loan, honours the Idempotency-Key and reads refusals); this module adds what spans
several loans: the villages whose routine checks are due, and their reports sent together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.errors import KIND_STATUS, ApiError
from api.schemas import (
    HandoverResult,
    StepResult,
    VillageBatch,
    VillageHousehold,
    VillageReportsResult,
)
from api.services import batches, idempotency, loans
from api.services.users import actor_for, get_active_user
from domain.calendar import china_date
from domain.errors import RuleViolation, ViolationKind, violation
from domain.inspection import InspectionFindings, VillageItem, batch_due, village_batches
from domain.loan import Actor, Role
from domain.text import Text
from store.models import LoanRecord, Task
from workflows.messages import HandOver, LoanStatus, ReportInspection
from workflows.servicing import LoanServicingWorkflow

VILLAGE_INSPECTION = "village_inspection"  # the task kind of a micro-credit routine check


async def step(
    session: Session,
    client: Client,
    actor: Actor,
    loan_id: str,
    update: Any,
    step_input: Any,
    idempotency_key: str | None = None,
    *,
    allow_closed: bool = False,
) -> LoanStatus:
    """One post-loan step on one loan (refused unless the loan is repaying, see perform_step)."""
    return await loans.perform_step(
        session,
        client,
        actor,
        loan_id,
        update,
        step_input,
        idempotency_key,
        servicing=True,
        allow_closed=allow_closed,
    )


def village_inspections(session: Session, actor: Actor) -> list[VillageBatch]:
    """K-2: the open routine checks of micro-credit loans in the actor's branch, one batch
    per village (villages sorted, households in household order), each due when its
    earliest household is. Borrowers are named; no ID or phone number is shown (H-3)."""
    rows = session.exec(
        select(Task, LoanRecord)
        .join(LoanRecord, col(LoanRecord.loan_id) == col(Task.loan_id))
        .where(
            Task.status == "open",
            Task.kind == VILLAGE_INSPECTION,
            Task.branch_code == actor.branch,
        )
    ).all()
    today = china_date(datetime.now(UTC))
    task_keys: dict[int, str] = {}  # id(item) -> its task: village_batches regroups the items
    items: list[VillageItem] = []
    for task, loan in rows:
        item = VillageItem(
            loan_id=loan.loan_id,
            village=loan.village,
            household_id=loan.household_id,
            borrower_name=loan.applicant_name,
            due_on=task.due_date or today,  # the workflow always dates a check; else: now
        )
        task_keys[id(item)] = task.task_key
        items.append(item)
    return [
        VillageBatch(
            village=village,
            due_on=batch_due(households),
            households=[
                VillageHousehold(
                    loan_id=h.loan_id,
                    household_id=h.household_id,
                    borrower_name=h.borrower_name,
                    task_key=task_keys[id(h)],
                    due_on=h.due_on,
                )
                for h in households
            ],
        )
        for village, households in village_batches(items).items()
    ]


class VillageReport(BaseModel):
    """One household's check within a village visit (K-5 findings)."""

    model_config = ConfigDict(extra="forbid")

    loan_id: Text = Field(min_length=1, max_length=40)
    task_key: Text = Field(min_length=1, max_length=120)
    findings: InspectionFindings


async def report_village(
    session: Session,
    client: Client,
    actor: Actor,
    village: str,
    reports: list[VillageReport],
    idempotency_key: str | None = None,
) -> VillageReportsResult:
    """K-2/K-5: the reports of one village visit, sent to each loan's workflow in turn.

    Each report is a step of its own loan: a refusal (unknown or foreign loan, a loan of
    another village, a task no longer open, a closed loan...) is that household's result,
    with its status and rule, and never undoes or holds back the other households' reports,
    which are recorded whatever happens to the rest. The same Idempotency-Key resends the
    whole visit safely: reports already accepted answer with their first result.
    """
    results = []
    for report in reports:

        async def send(report: VillageReport = report) -> LoanStatus:
            await run_in_threadpool(_check_village, session, actor, report.loan_id, village)
            return await step(
                session,
                client,
                actor,
                report.loan_id,
                LoanServicingWorkflow.report_inspection,
                ReportInspection(actor=actor, task_key=report.task_key, findings=report.findings),
                idempotency_key,
            )

        results.append(await _one_of_many(report.loan_id, report.task_key, send))
    accepted = sum(r.ok for r in results)
    return VillageReportsResult(
        village=village, accepted=accepted, refused=len(results) - accepted, results=results
    )


def _check_village(session: Session, actor: Actor, loan_id: str, village: str) -> None:
    """The loan is one the actor may see (404/403) and its household lives in the village."""
    record = loans.get_loan_record(session, actor, loan_id)
    if record.village != village:
        raise violation(
            "K-2",
            f"loan {loan_id} is of village {record.village}, not {village}",
            ViolationKind.INVALID,
            field="loan_id",
        )


async def _one_of_many(
    loan_id: str, task_key: str, send: Callable[[], Awaitable[LoanStatus]]
) -> StepResult:
    """One loan's step within a batch: its result, or its refusal, never the batch's end."""
    try:
        status = await send()
    except RuleViolation as refused:
        return _refused(loan_id, task_key, refused)
    except ApiError as failed:
        return StepResult(
            loan_id=loan_id,
            task_key=task_key,
            ok=False,
            status_code=failed.status,
            message=failed.message,
            rule=failed.rule,
            errors=[{"field": failed.field, "rule": failed.rule, "reason": failed.message}],
        )
    return StepResult(loan_id=loan_id, task_key=task_key, ok=True, status_code=200, loan=status)


def _refused(loan_id: str, task_key: str, refused: RuleViolation) -> StepResult:
    return StepResult(
        loan_id=loan_id,
        task_key=task_key,
        ok=False,
        status_code=KIND_STATUS[refused.kind],
        message="; ".join(r.message for r in refused.refusals),
        rule=refused.rule,
        errors=[{"field": r.field, "rule": r.rule, "reason": r.message} for r in refused.refusals],
    )


async def hand_over(
    session: Session,
    client: Client,
    head: Actor,
    leaving: str,
    successor_name: str,
    leaving_officer_signed: bool,
    successor_signed: bool,
    idempotency_key: str | None = None,
) -> HandoverResult:
    """H-1 责任移交: every serviced loan of the leaving officer in the head's branch moves to
    the successor with its open tasks, in one handover signed by both officers and the
    head. Each loan's workflow records it (its audit trail); a loan that refuses (say, one
    whose archive has just closed) is listed with its reason and the others still move.
    Sent again with the same key (or the same request on the same day), it answers as the
    first time (issue 9)."""
    successor = await run_in_threadpool(_handover_officers, session, head, leaving, successor_name)
    request = {
        "from_officer": leaving,
        "to_officer": successor_name,
        "leaving_officer_signed": leaving_officer_signed,
        "successor_signed": successor_signed,
    }
    fingerprint = idempotency.fingerprint("hand_over", request, head.username)
    today = china_date(datetime.now(UTC))
    key = idempotency_key or f"derived:{fingerprint}:{today}"
    handover = HandOver(
        actor=head,
        successor=successor,
        leaving_officer_signed=leaving_officer_signed,
        successor_signed=successor_signed,
    )

    async def move() -> HandoverResult:
        return await _move_loans(session, client, head, leaving, handover, key)

    return await batches.answer_once(
        session, head.username, f"hand_over:{key}", fingerprint, HandoverResult, move
    )


async def _move_loans(
    session: Session, client: Client, head: Actor, leaving: str, handover: HandOver, key: str
) -> HandoverResult:
    loan_ids = await run_in_threadpool(_serviced_loans, session, head.branch, leaving)
    results = []
    for loan_id in loan_ids:

        async def send(loan_id: str = loan_id) -> LoanStatus:
            return await step(
                session,
                client,
                head,
                loan_id,
                LoanServicingWorkflow.hand_over,
                handover,
                key,
                allow_closed=True,
            )

        results.append(await _one_of_many(loan_id, "handover", send))
    moved = sum(r.ok for r in results)
    return HandoverResult(
        from_officer=leaving,
        to_officer=handover.successor.username,
        signed_by_head=head.username,
        moved=moved,
        refused=len(results) - moved,
        results=results,
    )


def _handover_officers(session: Session, head: Actor, leaving: str, successor: str) -> Actor:
    """Both are loan officers of the head's branch (H-1); 422 naming the field otherwise."""
    found: dict[str, Actor] = {}
    for field, username in (("from_officer", leaving), ("to_officer", successor)):
        user = get_active_user(session, username)
        if user is None:
            raise ApiError(404, f"no active user {username}", field=field, rule="H-1")
        officer = actor_for(user)
        if officer.role is not Role.LOAN_OFFICER or officer.branch != head.branch:
            raise violation(
                "H-1",
                f"{username} is a {officer.role.value} of branch {officer.branch}; a handover "
                f"is between loan officers of branch {head.branch}",
                ViolationKind.INVALID,
                field=field,
            )
        found[field] = officer
    if leaving == successor:
        raise violation(
            "H-1", "the successor is another officer", ViolationKind.INVALID, field="to_officer"
        )
    return found["to_officer"]


def _serviced_loans(session: Session, branch: str, officer: str) -> list[str]:
    return list(
        session.exec(
            select(LoanRecord.loan_id)
            .where(
                LoanRecord.branch_code == branch,
                LoanRecord.officer_username == officer,
                col(LoanRecord.stage).in_([s.value for s in loans.SERVICING_STAGES]),
                col(LoanRecord.closed_at).is_(None),
            )
            .order_by(col(LoanRecord.loan_id))
        )
    )
