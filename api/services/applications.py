"""Applications (借款申请): checked at the edge, then each starts one loan's workflow, once.

The workflow re-checks everything at intake (E-1..E-15) on its pinned policy; what is
checked here answers at once and starts nothing when it fails. An application is taken
once per idempotency key (issue 9): the same key from the same officer answers with the
loan the first one started, and never sends a second text.
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.errors import ApiError
from api.schemas import LoanCreated
from api.services import idempotency
from api.services.users import branch_prefecture
from domain.approval import approval_tier
from domain.calendar import china_date
from domain.eligibility import check_application, check_register_credit
from domain.errors import RuleViolation, violation
from domain.loan import Actor, LoanApplication, Stage, Tier
from domain.policy import Policy
from store.models import ApplicationRequest, BlacklistEntry, CreditStandingRecord, HouseholdClaim
from workflows.loan import LoanWorkflow
from workflows.messages import ApplyForLoan, workflow_id_for
from workflows.search_attributes import LOAN_BRANCH, LOAN_OFFICER, LOAN_STAGE, PENDING_ROLE


def new_loan_id(now: datetime) -> str:
    return f"LN{china_date(now):%Y%m%d}{secrets.token_hex(4).upper()}"


async def apply_for_loan(
    session: Session,
    client: Client,
    policy: Policy,
    task_queue: str,
    officer: Actor,
    app: LoanApplication,
    idempotency_key: str | None = None,
) -> LoanCreated:
    """Checks what can be checked at the edge, then starts the loan's workflow, once per
    idempotency key (the client's, the web form's request id, or the request's own on the
    day): a resend answers with the loan the first one started."""
    now = datetime.now(UTC)
    request = idempotency.fingerprint("apply", app, officer.username)
    key = idempotency_key or f"derived:{request}:{china_date(now).isoformat()}"
    taken = await run_in_threadpool(_application_taken, session, officer, key, request)
    if taken is None:
        prefecture = await run_in_threadpool(_admit, session, policy, officer, app, now)
        taken = await run_in_threadpool(
            _take_application, session, officer, key, request, new_loan_id(now)
        )
    else:
        prefecture = await run_in_threadpool(branch_prefecture, session, officer.branch)
    await run_in_threadpool(session.close)  # no database connection is held while Temporal works
    start = ApplyForLoan(
        loan_id=taken.loan_id,
        application=app,
        branch_code=officer.branch,
        prefecture_code=prefecture,
        officer=officer,
        applied_at=_aware(taken.received_at),
        policy=policy,
    )
    with contextlib.suppress(WorkflowAlreadyStartedError):  # a resend: started already
        await client.start_workflow(
            LoanWorkflow.run,
            start,
            id=workflow_id_for(taken.loan_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(LOAN_STAGE, Stage.APPLIED.value),
                    SearchAttributePair(LOAN_BRANCH, officer.branch),
                    SearchAttributePair(LOAN_OFFICER, officer.username),
                    SearchAttributePair(PENDING_ROLE, ""),
                ]
            ),
        )
    return LoanCreated(
        loan_id=taken.loan_id,
        workflow_id=workflow_id_for(taken.loan_id),
        policy_version=policy.version,
        stage=Stage.APPLIED,
    )


def _aware(moment: datetime) -> datetime:
    """SQLite gives back the stored UTC moment without its zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _application_taken(
    session: Session, officer: Actor, key: str, request: str
) -> ApplicationRequest | None:
    """The application first received under this key; 409 if that was another request."""
    taken = session.get(ApplicationRequest, (officer.username, key))
    if taken is not None and taken.fingerprint != request:
        raise ApiError(
            409,
            f"this Idempotency-Key started loan {taken.loan_id} with a different application; "
            "a new application needs a new key",
            rule="H-2",
            field="Idempotency-Key",
        )
    return taken


def _take_application(
    session: Session, officer: Actor, key: str, request: str, loan_id: str
) -> ApplicationRequest:
    """Records the key before the loan starts; of simultaneous resends the first wins."""
    row = ApplicationRequest(
        officer_username=officer.username, request_key=key, fingerprint=request, loan_id=loan_id
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        taken = _application_taken(session, officer, key, request)
        assert taken is not None
        return taken
    session.refresh(row)
    return row


def _admit(
    session: Session, policy: Policy, officer: Actor, app: LoanApplication, now: datetime
) -> str | None:
    """The edge's checks (nothing is started or written if one fails); the prefecture branch."""
    refusals = check_application(app, policy, china_date(now))
    if refusals:
        raise RuleViolation(refusals)
    claim = session.get(HouseholdClaim, app.applicant.household_id)
    if claim is not None:  # the workflow re-checks atomically (E-7); this answers at once
        raise violation(
            "E-7",
            f"household {app.applicant.household_id} already has an open application or loan "
            f"({claim.loan_id}); one member per household at a time",
            field="applicant.household_id",
        )
    household = app.applicant.household_id
    standing = session.get(CreditStandingRecord, household)
    refusals = check_register_credit(
        standing.score if standing else None,
        session.get(BlacklistEntry, household) is not None,
        policy,
    )
    if refusals:  # the workflow re-checks at intake; this answers at once
        raise RuleViolation(refusals)
    prefecture = branch_prefecture(session, officer.branch)
    if prefecture is None and approval_tier(app.amount, policy) is Tier.PREFECTURE:
        raise violation(
            "A-2",
            f"branch {officer.branch} reports to no prefecture branch, so a loan above the "
            f"county limit {policy.approval.county_authority_limit} cannot be routed",
            field="amount",
        )
    return prefecture
