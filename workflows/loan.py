"""The loan workflow (贷款流程): one per loan, from application to disbursement and beyond.

Human steps are updates with validators: a step in the wrong stage, by the wrong
person or breaking a rule is refused before anything changes. The rules are the
pure functions of ``domain``; this module only sequences them, waits on people
and timers, and calls activities for every outside effect.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.credit_bureau import CreditBureauActivities, CreditReportRequest
    from activities.ledger import LedgerActivities, PostDisbursementInput
    from activities.notifications import NotificationActivities, NotifyStaffInput, SendSmsInput
    from activities.register import (
        ClaimHouseholdInput,
        HouseholdCreditInput,
        LateTaskRecipientsInput,
        RegisterActivities,
        ReleaseHouseholdInput,
        StoreScheduleInput,
        TaskSpec,
    )
    from domain.approval import (
        approval_tier,
        check_decision,
        check_separation,
        check_signing,
        decision_actor,
        decision_deadline,
        decision_stages,
        signing_deadline,
    )
    from domain.calendar import CHINA, china_date
    from domain.eligibility import (
        check_application,
        check_credit_report,
        check_household,
        check_register_credit,
        group_households,
        missing_materials,
    )
    from domain.errors import Refusal, ViolationKind
    from domain.investigation import check_report, discrepancies
    from domain.loan import (
        DECISION_STAGES,
        Actor,
        ApprovedTerms,
        ContractSigning,
        CreditReport,
        DecisionOutcome,
        HouseholdStanding,
        Installment,
        Material,
        ReviewOutcome,
        Role,
        Stage,
        Tier,
    )
    from domain.notices import borrower_reasons, task_labels
    from domain.schedule import build_schedule, maturity_date
    from domain.servicing import open_book
    from workflows.calendar import WorkflowCalendar
    from workflows.decisions import STEP_TASKS, decision_task
    from workflows.messages import (
        ApplyForLoan,
        BeginServicing,
        ConfirmAsBranchHead,
        DecideLoan,
        LoanOutcome,
        LoanStatus,
        ReportView,
        ServiceLoan,
        ServicingState,
        SignContract,
        StepRecord,
        SubmitInvestigation,
        SubmitReview,
        SupplyMaterials,
        WithdrawApplication,
        workflow_id_for,
    )
    from workflows.projection import loan_projection, loan_search_attributes
    from workflows.refusals import check_actor, refusal, refuse
    from workflows.servicing import LoanServicingWorkflow

# Infrastructure failures are retried without limit: a loan waits, it never fails for an outage.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
ACTIVITY_TIMEOUT = timedelta(seconds=30)

# Which rule governs each human step: cited when the step comes from the wrong person or stage.
STEP_RULE = {
    "supply_materials": "E-13",
    "submit_investigation": "I-1",
    "review_loan": "A-2",
    "confirm_as_branch_head": "A-2",
    "decide_loan": "A-2",
    "sign_contract": "C-1",
    "withdraw_application": "A-3",
}


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0, 0), CHINA)


@workflow.defn(name="LoanWorkflow")
class LoanWorkflow:
    @workflow.init
    def __init__(self, inp: ApplyForLoan) -> None:
        self._inp = inp
        self._app = inp.application
        self._policy = inp.policy
        self._calendar = WorkflowCalendar(inp.policy.calendar)
        self._tier: Tier = approval_tier(inp.application.amount, inp.policy)
        self._route: list[Stage] = decision_stages(self._tier)
        self._stage = Stage.APPLIED
        self._revision = 0
        self._materials: list[Material] = list(inp.application.materials)
        self._round = 1
        self._reports: dict[str, ReportView] = {}
        self._report_tasks: dict[str, str] = {}
        self._investigators: set[str] = set()
        self._reviewers: set[str] = set()
        self._discrepancies: list[str] = []
        self._steps: list[StepRecord] = []
        self._standing: HouseholdStanding | None = None
        self._credit_report: CreditReport | None = None
        self._decision_due: date | None = None
        self._sla_breached = False
        self._approved: ApprovedTerms | None = None
        self._signing_deadline: date | None = None
        self._signing: ContractSigning | None = None
        self._decided_at: datetime | None = None
        self._disbursed_at: datetime | None = None
        self._maturity: date | None = None
        self._schedule: list[Installment] = []
        self._reasons: list[Refusal] = []
        self._begin_servicing = False
        self.step_ids: list[str] = []  # applied steps (workflows/step_keys.py), carried on

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: ApplyForLoan) -> LoanOutcome:
        await self._intake()
        if self._stage in DECISION_STAGES:
            await self._await_decision()
        if self._stage is Stage.SIGNING:
            await self._await_signing()
        if self._stage is Stage.DISBURSING:
            await self._disburse()
        if self._stage is Stage.DISBURSED:
            await self._service()
        if self._stage.terminal:
            await self._close_unfunded()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return LoanOutcome(loan_id=self._inp.loan_id, stage=self._stage, reasons=self._reasons)

    async def _intake(self) -> None:
        """Eligibility on the pinned policy (E-1..E-15); the register and bureau via activities."""
        app = self._app
        self._standing = await workflow.execute_activity_method(
            RegisterActivities.claim_household,
            ClaimHouseholdInput(
                loan_id=self._inp.loan_id,
                household_id=app.applicant.household_id,
                group_household_ids=group_households(app),
                applied_on=self._today(),
                split_window_days=self._policy.eligibility.split_window_days,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        refusals = check_household(app, self._standing, self._policy)
        if workflow.patched("register-credit"):
            credit = await workflow.execute_activity_method(
                RegisterActivities.household_credit,
                HouseholdCreditInput(household_id=app.applicant.household_id),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
            )
            refusals += check_register_credit(credit.score, credit.blacklisted, self._policy)
        refusals += check_application(app, self._policy, self._today())
        if not refusals:
            self._credit_report = await workflow.execute_activity_method(
                CreditBureauActivities.fetch_credit_report,
                CreditReportRequest(loan_id=self._inp.loan_id, id_number=app.applicant.id_number),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
            )
            refusals += check_credit_report(self._credit_report)
        if refusals:
            self._reasons = refusals
            self._stage = Stage.REFUSED
            return
        await self._send_sms("application_received", {"amount": app.amount})
        if self._missing_materials():
            self._stage = Stage.MATERIALS_INCOMPLETE
        else:
            await self._start_clock()
            self._stage = Stage.INVESTIGATION
        await self._project()

    async def _await_decision(self) -> None:
        """Investigation, review and approval, against the A-4 clock once materials are complete."""

        def decided() -> bool:
            return self._stage not in DECISION_STAGES

        await workflow.wait_condition(lambda: decided() or self._decision_due is not None)
        if decided():
            return
        assert self._decision_due is not None
        late_at = _end_of_day(self._decision_due)
        try:
            await workflow.wait_condition(
                decided, timeout=max(late_at - workflow.now(), timedelta(seconds=1))
            )
        except TimeoutError:
            await self._record_sla_breach()
            await workflow.wait_condition(decided)

    async def _record_sla_breach(self) -> None:
        """A-4: the decision is late; remind the task owners and their head, and record it."""
        self._sla_breached = True
        workflow.logger.warning("loan %s missed its decision deadline", self._inp.loan_id)
        recipients = await workflow.execute_activity_method(
            RegisterActivities.late_task_recipients,
            LateTaskRecipientsInput(loan_id=self._inp.loan_id),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        await workflow.execute_activity_method(
            NotificationActivities.notify_staff,
            NotifyStaffInput(
                idempotency_key=self._key("sla-breach"),
                loan_id=self._inp.loan_id,
                usernames=recipients,
                template="staff_task_late",
                context={
                    "loan_id": self._inp.loan_id,
                    "tasks": task_labels([t.kind for t in self._open_tasks()]),
                    "deadline": self._decision_due,
                },
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        await self._project()

    async def _await_signing(self) -> None:
        """C-1: the contract is signed within the window, or the approval lapses."""
        assert self._signing_deadline is not None
        lapse_at = _end_of_day(self._signing_deadline)
        try:
            await workflow.wait_condition(
                lambda: self._stage is not Stage.SIGNING,
                timeout=max(lapse_at - workflow.now(), timedelta(seconds=1)),
            )
        except TimeoutError:
            self._stage = Stage.LAPSED
            self._reasons = [
                refusal(
                    "C-1",
                    f"contract not signed by {self._signing_deadline}; the approval lapsed",
                    ViolationKind.CONFLICT,
                )
            ]

    async def _disburse(self) -> None:
        """C-3: one ledger posting whatever the retries; C-4: the schedule fixed and given."""
        assert self._approved is not None
        terms = self._approved
        await workflow.execute_activity_method(
            LedgerActivities.post_disbursement,
            PostDisbursementInput(
                idempotency_key=self._key("disbursement"),
                loan_id=self._inp.loan_id,
                amount=terms.amount,
                settlement_account=self._app.applicant.settlement_account,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        self._disbursed_at = workflow.now()
        start = self._today()
        self._schedule = build_schedule(
            terms.amount,
            terms.annual_rate,
            terms.term_months,
            terms.repayment_method,
            start,
            self._policy.interest.day_count_basis,
        )
        self._maturity = maturity_date(start, terms.term_months)
        await workflow.execute_activity_method(
            RegisterActivities.store_schedule,
            StoreScheduleInput(loan_id=self._inp.loan_id, installments=self._schedule),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        self._stage = Stage.DISBURSED
        await self._project()
        first = self._schedule[0]
        await self._send_sms(
            "loan_disbursed",
            {
                "amount": terms.amount,
                "settlement_account_masked": "****" + self._app.applicant.settlement_account[-4:],
                "installments": len(self._schedule),
                "first_due_date": first.due_date,
                "first_payment": first.payment,
                "maturity_date": self._maturity,
            },
        )

    async def _service(self) -> None:
        """Post-loan management (贷后管理) goes on in the loan's next runs (servicing.py).

        A loan paid out before servicing existed waits here until told to begin
        (``python manage.py begin-servicing``), so its history still replays.
        """
        if not workflow.patched("servicing"):
            await workflow.wait_condition(lambda: self._begin_servicing)
        await workflow.wait_condition(workflow.all_handlers_finished)
        assert self._approved is not None and self._disbursed_at is not None
        book = open_book(self._schedule, self._approved.amount, china_date(self._disbursed_at))
        workflow.continue_as_new(
            ServiceLoan(
                origination=self.status(),
                application=self._app,
                officer=self._inp.officer,
                policy=self._policy,
                book=book,
                state=ServicingState(
                    revision=self._revision,
                    calendar_years=self._calendar.kept,
                    step_ids=self.step_ids,
                ),
            ),
            workflow=LoanServicingWorkflow.run,
        )

    @workflow.signal
    def begin_servicing(self, inp: BeginServicing) -> None:
        """Moves a loan paid out under the previous code into post-loan management."""
        workflow.logger.info("loan %s: begin servicing (%s)", self._inp.loan_id, inp.reason)
        self._begin_servicing = True

    async def _close_unfunded(self) -> None:
        """A loan that ends before disbursement frees the household (E-7) and tells the borrower."""
        await workflow.execute_activity_method(
            RegisterActivities.release_household,
            ReleaseHouseholdInput(
                loan_id=self._inp.loan_id, household_id=self._app.applicant.household_id
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        if self._stage in (Stage.REFUSED, Stage.LAPSED):  # set here, not by a step's handler
            await self._project()
        template = {
            Stage.REFUSED: "application_refused",
            Stage.REJECTED: "loan_rejected",
            Stage.WITHDRAWN: "application_withdrawn",
            Stage.LAPSED: "approval_lapsed",
        }[self._stage]
        await self._send_sms(
            template,
            {"reasons": borrower_reasons(self._reasons), "reason": borrower_reasons(self._reasons)},
        )

    # ------------------------------------------------------------------ human steps

    @workflow.update
    async def supply_materials(self, inp: SupplyMaterials) -> LoanStatus:
        """E-13: materials handed in; the A-4 clock starts when they are complete."""
        self._materials.extend(m for m in inp.materials if m not in self._materials)
        if not self._missing_materials():
            await self._start_clock()
            self._stage = Stage.INVESTIGATION
        await self._project()
        return self.status()

    @supply_materials.validator
    def _validate_supply_materials(self, inp: SupplyMaterials) -> None:
        self._check_step("supply_materials", {Stage.MATERIALS_INCOMPLETE})
        self._check_actor("supply_materials", inp.actor, Role.LOAN_OFFICER, self._inp.branch_code)
        missing = self._missing_materials()
        if not set(inp.materials) & set(missing):
            raise refuse(
                [
                    refusal(
                        "E-13",
                        "none of these materials is missing; still missing: " + ", ".join(missing),
                        ViolationKind.INVALID,
                        "materials",
                    )
                ]
            )

    @workflow.update
    async def submit_investigation(self, inp: SubmitInvestigation) -> LoanStatus:
        """I-1..I-3: one of the two independent on-site reports."""
        actor = inp.actor.username
        slot = inp.task_key or self._free_investigation_slots()[0]
        self._reports[actor] = ReportView(
            officer=actor, submitted_at=workflow.now(), report=inp.report
        )
        self._report_tasks[actor] = slot
        self._investigators.add(actor)
        if len(self._reports) == 2:
            first, second = (v.report for v in self._reports.values())
            self._discrepancies = discrepancies(first, second, self._policy.investigation)
            self._stage = self._route[0]
        await self._project()
        return self.status()

    @submit_investigation.validator
    def _validate_submit_investigation(self, inp: SubmitInvestigation) -> None:
        self._check_step("submit_investigation", {Stage.INVESTIGATION})
        self._check_actor(
            "submit_investigation", inp.actor, Role.LOAN_OFFICER, self._inp.branch_code
        )
        refusals: list[Refusal] = []
        if inp.actor.username in self._reports:
            refusals.append(
                refusal(
                    "I-1",
                    f"{inp.actor.username} has already submitted a report for this loan; "
                    "the second report must come from a different officer",
                    ViolationKind.CONFLICT,
                )
            )
        if inp.task_key is not None and inp.task_key not in self._free_investigation_slots():
            refusals.append(
                refusal(
                    "I-1",
                    f"task {inp.task_key} is not an open investigation of this loan",
                    ViolationKind.CONFLICT,
                    "task_key",
                )
            )
        if inp.actor.household_id and inp.actor.household_id == self._app.applicant.household_id:
            refusals.append(
                refusal(
                    "A-1",
                    "an officer may not investigate a loan to their own household",
                    ViolationKind.FORBIDDEN,
                )
            )
        refusals += check_report(inp.report, self._app)
        if refusals:
            raise refuse(refusals)

    @workflow.update
    async def review_loan(self, inp: SubmitReview) -> LoanStatus:
        """A-2: the reviewer's opinion (审查), at the county or, above its limit, the prefecture."""
        self._record_step("review", inp.actor, inp.review.outcome, inp.review.comment)
        self._reviewers.add(inp.actor.username)
        self._after_review(inp.review.outcome)
        await self._project()
        return self.status()

    @review_loan.validator
    def _validate_review_loan(self, inp: SubmitReview) -> None:
        self._check_step("review_loan", {Stage.REVIEW, Stage.PREFECTURE_REVIEW})
        self._check_separation(inp.actor)
        self._check_actor("review_loan", inp.actor, *self._decision_actor())

    @workflow.update
    async def confirm_as_branch_head(self, inp: ConfirmAsBranchHead) -> LoanStatus:
        """A-2: above the county limit the branch head confirms before the prefecture reviews."""
        self._record_step("branch_confirmation", inp.actor, inp.review.outcome, inp.review.comment)
        self._reviewers.add(inp.actor.username)
        self._after_review(inp.review.outcome)
        await self._project()
        return self.status()

    @confirm_as_branch_head.validator
    def _validate_confirm_as_branch_head(self, inp: ConfirmAsBranchHead) -> None:
        self._check_step("confirm_as_branch_head", {Stage.BRANCH_CONFIRMATION})
        self._check_separation(inp.actor)
        self._check_actor("confirm_as_branch_head", inp.actor, *self._decision_actor())

    @workflow.update
    async def decide_loan(self, inp: DecideLoan) -> LoanStatus:
        """A-3: approve (perhaps for less, with conditions), return to investigation, or reject."""
        decision = inp.decision
        comment = decision.reason or "; ".join(decision.conditions)
        self._record_step("decision", inp.actor, decision.outcome, comment)
        self._decided_at = workflow.now()
        if decision.outcome is DecisionOutcome.APPROVE:
            assert decision.amount and decision.term_months and decision.annual_rate
            self._approved = ApprovedTerms(
                amount=decision.amount,
                term_months=decision.term_months,
                annual_rate=decision.annual_rate,
                repayment_method=decision.repayment_method or self._app.repayment_method,
                conditions=list(decision.conditions),
                approved_by=inp.actor.username,
                approved_at=workflow.now(),
            )
            self._signing_deadline = signing_deadline(self._today(), self._policy)
            self._stage = Stage.SIGNING
            await self._project()
            await self._send_sms(
                "loan_approved",
                {
                    "amount": decision.amount,
                    "term_months": decision.term_months,
                    "annual_rate": decision.annual_rate,
                    "signing_deadline": self._signing_deadline,
                },
            )
        elif decision.outcome is DecisionOutcome.RETURN:
            self._return_to_investigation()
            await self._project()
        else:
            self._reasons = [refusal("A-3", decision.reason, ViolationKind.CONFLICT)]
            self._stage = Stage.REJECTED
            await self._project()
        return self.status()

    @decide_loan.validator
    def _validate_decide_loan(self, inp: DecideLoan) -> None:
        self._check_step("decide_loan", {Stage.APPROVAL})
        self._check_separation(inp.actor)
        self._check_actor("decide_loan", inp.actor, *self._decision_actor())
        refusals = check_decision(inp.decision, inp.actor, self._app, self._tier, self._policy)
        if refusals:
            raise refuse(refusals)

    @workflow.update
    async def sign_contract(self, inp: SignContract) -> LoanStatus:
        """C-1/C-2: contracts signed and conditions met; disbursement follows at once."""
        if self._stage is not Stage.SIGNING:  # the window closed while this step was in flight
            raise refuse(self._signing_closed())
        self._signing = inp.signing
        self._record_step("signing", inp.actor, "signed", inp.signing.contract_number)
        self._stage = Stage.DISBURSING
        await self._project()
        return self.status()

    @sign_contract.validator
    def _validate_sign_contract(self, inp: SignContract) -> None:
        if self._stage is Stage.LAPSED:
            raise refuse(self._signing_closed())
        self._check_step("sign_contract", {Stage.SIGNING})
        self._check_actor("sign_contract", inp.actor, Role.LOAN_OFFICER, self._inp.branch_code)
        assert self._approved is not None
        refusals = check_signing(
            inp.signing,
            self._app,
            self._approved.conditions,
            china_date(self._approved.approved_at),
            self._policy,
        )
        if inp.signing.signed_on > self._today():
            refusals.append(
                refusal(
                    "C-1",
                    f"signed_on {inp.signing.signed_on} is in the future",
                    ViolationKind.INVALID,
                    "signed_on",
                )
            )
        if refusals:
            raise refuse(refusals)

    @workflow.update
    async def withdraw_application(self, inp: WithdrawApplication) -> LoanStatus:
        """The borrower withdraws before disbursement; the officer records it."""
        self._record_step("withdrawal", inp.actor, "withdrawn", inp.reason)
        self._reasons = [
            refusal("A-3", f"withdrawn by the borrower: {inp.reason}", ViolationKind.CONFLICT)
        ]
        self._stage = Stage.WITHDRAWN
        await self._project()
        return self.status()

    @withdraw_application.validator
    def _validate_withdraw_application(self, inp: WithdrawApplication) -> None:
        allowed = set(DECISION_STAGES) | {Stage.SIGNING}
        self._check_step("withdraw_application", allowed)
        self._check_actor(
            "withdraw_application", inp.actor, Role.LOAN_OFFICER, self._inp.branch_code
        )

    @workflow.query
    def status(self) -> LoanStatus:
        both_in = len(self._reports) == 2
        return LoanStatus(
            loan_id=self._inp.loan_id,
            stage=self._stage,
            branch_code=self._inp.branch_code,
            prefecture_code=self._inp.prefecture_code,
            officer=self._inp.officer.username,
            tier=self._tier,
            round=self._round,
            policy_version=self._policy.version,
            applied_at=self._inp.applied_at,
            amount_requested=self._app.amount,
            term_months=self._app.term_months,
            materials_missing=self._missing_materials(),
            decision_due=self._decision_due,
            sla_breached=self._sla_breached,
            investigators_reported=list(self._reports),
            reports=list(self._reports.values()) if both_in else [],
            discrepancies=self._discrepancies,
            steps=list(self._steps),
            credit_report=self._credit_report,
            approved=self._approved,
            signing_deadline=self._signing_deadline,
            signing=self._signing,
            disbursed_at=self._disbursed_at,
            maturity_date=self._maturity,
            schedule=list(self._schedule),
            outcome_reasons=list(self._reasons),
            open_tasks=self._open_tasks(),
            decided_at=self._decided_at,
        )

    # ------------------------------------------------------------------ checks

    def _check_step(self, step: str, stages: set[Stage]) -> None:
        if self._stage not in stages:
            wanted = ", ".join(sorted(s.value for s in stages))
            raise refuse(
                [
                    refusal(
                        STEP_RULE[step],
                        f"loan {self._inp.loan_id} is in stage '{self._stage.value}'; "
                        f"{step} belongs to stage {wanted}",
                        ViolationKind.CONFLICT,
                    )
                ]
            )

    def _check_actor(self, step: str, actor: Actor, role: Role, branch: str) -> None:
        check_actor(STEP_RULE[step], step, actor, role, branch)

    def _check_separation(self, actor: Actor) -> None:
        refusals = check_separation(
            actor,
            borrower_household_id=self._app.applicant.household_id,
            investigators=self._investigators,
            reviewers=self._reviewers,
        )
        if refusals:
            raise refuse(refusals)

    def _signing_closed(self) -> list[Refusal]:
        return [
            refusal(
                "C-1",
                f"the signing window closed on {self._signing_deadline}; the approval has lapsed",
                ViolationKind.CONFLICT,
            )
        ]

    # ------------------------------------------------------------------ state helpers

    def _today(self) -> date:
        return china_date(workflow.now())

    def _key(self, step: str) -> str:
        """Idempotency key of an outside effect: the workflow id plus the step."""
        return f"{workflow_id_for(self._inp.loan_id)}/{step}"

    def _prefecture_branch(self) -> str:
        return self._inp.prefecture_code or ""

    def _decision_actor(self) -> tuple[Role, str]:
        return decision_actor(
            self._stage, self._tier, self._inp.branch_code, self._prefecture_branch()
        )

    def _missing_materials(self) -> list[Material]:
        return missing_materials(self._app.model_copy(update={"materials": self._materials}))

    async def _start_clock(self) -> None:
        """A-4: from complete materials to decision, in working days (A-5)."""
        assert self._standing is not None
        today = self._today()
        self._decision_due = decision_deadline(
            today,
            self._standing.returning_customer,
            self._app.applicant.remote_area,
            self._policy,
            await self._calendar.from_day(today),
        )

    def _record_step(self, step: str, actor: Actor, outcome: str, comment: str) -> None:
        self._steps.append(
            StepRecord(
                step=step,
                actor=actor.username,
                role=actor.role,
                at=workflow.now(),
                outcome=str(outcome),
                comment=comment,
            )
        )

    def _after_review(self, outcome: ReviewOutcome) -> None:
        if outcome is ReviewOutcome.RETURN:
            self._return_to_investigation()
        else:
            self._stage = self._route[self._route.index(self._stage) + 1]

    def _return_to_investigation(self) -> None:
        """A-3: back to the investigators for a new pair of reports; the A-4 clock runs on."""
        self._round += 1
        self._reports = {}
        self._report_tasks = {}
        self._discrepancies = []
        self._stage = Stage.INVESTIGATION

    def _free_investigation_slots(self) -> list[str]:
        taken = set(self._report_tasks.values())
        slots = [f"{self._inp.loan_id}:r{self._round}:investigate:{n}" for n in (1, 2)]
        return [s for s in slots if s not in taken]

    def _open_tasks(self) -> list[TaskSpec]:
        loan, stage, branch = self._inp.loan_id, self._stage, self._inp.branch_code
        prefix = f"{loan}:r{self._round}"
        due = self._decision_due
        checkers = sorted(self._investigators)
        if stage is Stage.MATERIALS_INCOMPLETE:
            return [
                TaskSpec(
                    task_key=f"{loan}:materials",
                    kind="supply_materials",
                    role=Role.LOAN_OFFICER,
                    branch_code=branch,
                )
            ]
        if stage is Stage.INVESTIGATION:
            return [
                TaskSpec(
                    task_key=key,
                    kind="investigate",
                    role=Role.LOAN_OFFICER,
                    branch_code=branch,
                    due_date=due,
                    excluded_usernames=sorted(self._reports),
                )
                for key in self._free_investigation_slots()
            ]
        if stage in STEP_TASKS:
            approving = stage is Stage.APPROVAL
            return [
                decision_task(
                    stage,
                    prefix,
                    self._tier,
                    branch,
                    self._prefecture_branch(),
                    due=due,
                    amount=self._app.amount,
                    excluded=sorted(self._investigators | self._reviewers)
                    if approving
                    else checkers,
                )
            ]
        if stage is Stage.SIGNING:
            return [
                TaskSpec(
                    task_key=f"{loan}:sign",
                    kind="sign_contract",
                    role=Role.LOAN_OFFICER,
                    branch_code=branch,
                    due_date=self._signing_deadline,
                )
            ]
        return []

    async def _project(self) -> None:
        """Write the register row and the inbox; a newer revision always wins (idempotent)."""
        self._revision += 1
        status = self.status()
        workflow.upsert_search_attributes(loan_search_attributes(status))
        await workflow.execute_activity_method(
            RegisterActivities.project_loan,
            loan_projection(status, self._app, self._revision),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )

    async def _send_sms(self, template: str, context: dict[str, object]) -> None:
        """A-3/C-4: tell the borrower; keyed by step so a retry never sends twice.

        A notice that cannot be rendered is an operations matter, never a reason to stop
        the loan: it is logged and the loan goes on.
        """
        try:
            await workflow.execute_activity_method(
                NotificationActivities.send_sms,
                SendSmsInput(
                    idempotency_key=self._key(f"sms/{template}/r{self._round}"),
                    loan_id=self._inp.loan_id,
                    phone=self._app.applicant.phone,
                    template=template,
                    context={
                        "name": self._app.applicant.name,
                        "loan_id": self._inp.loan_id,
                        "institution": self._policy.institution,
                        **context,
                    },
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
            )
        except ActivityError as failed:
            workflow.logger.error(
                "loan %s: SMS %s not sent: %s", self._inp.loan_id, template, failed.cause
            )
