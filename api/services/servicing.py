"""Post-loan management (贷后管理) at the API: steps on repaying loans and K-2 village batches.

Each post-loan step goes to the loan's workflow through ``loans.perform_step`` (which finds
the loan, honours the Idempotency-Key and reads refusals); this module adds what spans
several loans: the villages whose routine checks are due, and their reports sent together.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.errors import KIND_STATUS, ApiError
from api.schemas import StepResult, VillageBatch, VillageHousehold, VillageReportsResult
from api.services import loans
from domain.calendar import china_date
from domain.errors import RuleViolation, ViolationKind, violation
from domain.inspection import InspectionFindings, VillageItem, batch_due, village_batches
from domain.loan import Actor
from store.models import LoanRecord, Task
from workflows.messages import LoanStatus, ReportInspection
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

    loan_id: str = Field(min_length=1, max_length=40)
    task_key: str = Field(min_length=1, max_length=120)
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
        try:
            await run_in_threadpool(_check_village, session, actor, report.loan_id, village)
            status = await step(
                session,
                client,
                actor,
                report.loan_id,
                LoanServicingWorkflow.report_inspection,
                ReportInspection(actor=actor, task_key=report.task_key, findings=report.findings),
                idempotency_key,
            )
        except RuleViolation as refused:
            results.append(_refused(report, refused))
        except ApiError as failed:
            results.append(
                StepResult(
                    loan_id=report.loan_id,
                    task_key=report.task_key,
                    ok=False,
                    status_code=failed.status,
                    message=failed.message,
                    rule=failed.rule,
                    errors=[{"field": failed.field, "rule": failed.rule, "reason": failed.message}],
                )
            )
        else:
            results.append(
                StepResult(
                    loan_id=report.loan_id,
                    task_key=report.task_key,
                    ok=True,
                    status_code=200,
                    loan=status,
                )
            )
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


def _refused(report: VillageReport, refused: RuleViolation) -> StepResult:
    return StepResult(
        loan_id=report.loan_id,
        task_key=report.task_key,
        ok=False,
        status_code=KIND_STATUS[refused.kind],
        message="; ".join(r.message for r in refused.refusals),
        rule=refused.rule,
        errors=[{"field": r.field, "rule": r.rule, "reason": r.message} for r in refused.refusals],
    )
