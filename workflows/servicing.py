"""Post-loan management (贷后管理): the loan's workflow after disbursement, to closure.

The loan's workflow continues as new into this one when the money is paid out, and again
after every dated event (a due date, a change of band, a check falling due, a re-notice),
carrying only the ``LoanBook`` and the ``ServicingState``, so a run's history stays short
however long the loan runs. Everything happens on timers: reminders before each due date
(P-3), the debit on the date (P-2) allocated by P-6, penalty and compound interest by the
day (P-5), the class, bucket and score as days past due grow (F-1, D-4, F-2), the
collection ladder and notices (D-1..D-3), checks (K-1..K-5), warning signals (W-1, W-2)
and closure (P-7).

Human steps are updates with validators. Their effects are applied by the main loop, one
at a time in the order they were accepted, so a step never interleaves with a due date.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import (
        LedgerActivities,
        PostDepositInput,
        PostRecoveryInput,
        PostRepaymentInput,
        PostWriteOffInput,
        SettlementBalanceInput,
    )
    from activities.notifications import IssueNoticeInput, NotificationActivities, SendSmsInput
    from activities.register import (
        BlacklistHouseholdInput,
        RecordCreditEventInput,
        RegisterActivities,
        ReleaseHouseholdInput,
        TaskSpec,
    )
    from domain.allocation import Allocation, Dues, allocate
    from domain.approval import check_authority, check_separation, decision_actor, decision_stages
    from domain.calendar import CHINA, china_date
    from domain.classification import ScoreEvent, check_judgement, score_events_for_dpd
    from domain.collection import (
        RUNG_ACTIONS,
        Rung,
        next_renotice,
        receipt_deadline,
        rung_deadline,
        rung_for,
    )
    from domain.eligibility import credit_grade
    from domain.errors import ViolationKind
    from domain.extension import (
        EXTENDABLE_CLASSES,
        ExtensionRequest,
        check_agreement_signed,
        check_extension_method,
        check_extension_request,
        extended_maturity,
        extension_schedule,
    )
    from domain.inspection import (
        InspectionKind,
        WarningMeasure,
        WarningSignal,
        calls_loan_in,
        first_check_due,
        inspection_kind,
        next_routine_check,
        signal_deadlines,
        signals_from_findings,
    )
    from domain.loan import (
        CLASS_NAMES,
        Actor,
        CreditGrade,
        DecisionOutcome,
        Installment,
        LoanClass,
        RepaymentMethod,
        ReviewOutcome,
        Role,
        Stage,
        Tier,
    )
    from domain.prepayment import PrepaymentQuote, prepay
    from domain.reminders import Reminder, reminders
    from domain.servicing import (
        AccountAsOf,
        accrue_to,
        apply_payment,
        apply_prepayment,
        band_changes,
        call_in,
        dues,
        figures_on,
        standing_on,
    )
    from workflows.calendar import WorkflowCalendar
    from workflows.decisions import decision_task
    from workflows.messages import (
        ClassifyLoan,
        CollectionStep,
        ConfirmAsBranchHead,
        DecideLoan,
        DecidePrepayment,
        DecideWarning,
        DecideWriteOff,
        ExtensionRecord,
        HandOver,
        HandoverRecord,
        InspectionRecord,
        LoanOutcome,
        LoanStatus,
        MarkWilfulDefault,
        NoticeRecord,
        PrepaymentRecord,
        ProposeWriteOff,
        RaiseWarning,
        RecordCollectionAction,
        RecordNoticeReceipt,
        RecordPayment,
        ReportInspection,
        RequestExtension,
        RequestPrepayment,
        ServiceLoan,
        ServicingView,
        SignContract,
        StepRecord,
        SubmitFinalEvaluation,
        SubmitReview,
        WarningRecord,
        WriteOffRecord,
        workflow_id_for,
    )
    from workflows.projection import loan_projection, loan_search_attributes
    from workflows.refusals import check_actor, check_handover, refusal, refuse

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
ACTIVITY_TIMEOUT = timedelta(seconds=30)
# The day's servicing batch (reminders, debits, reclassification) runs at this hour, China time.
BATCH_HOUR = time(9, 0)
REVIEWS = {Stage.REVIEW, Stage.PREFECTURE_REVIEW}
# Stages in which the loan is serviced: repaid, or written off and still recovered (Z-1).
SERVICED = frozenset({Stage.REPAYING, Stage.WRITTEN_OFF})
# A run continues as new after the first dated event that finds its history this long.
RUN_EVENT_BUDGET = 300
# A run also ends when Temporal suggests it, or after this many human steps.
MAX_STEPS_PER_RUN = 10


def batch_time(day: date) -> datetime:
    return datetime.combine(day, BATCH_HOUR, CHINA)


@workflow.defn(name="LoanServicingWorkflow")
class LoanServicingWorkflow:
    @workflow.init
    def __init__(self, inp: ServiceLoan) -> None:
        self._inp = inp
        self._loan_id = inp.origination.loan_id
        self._app = inp.application
        self._policy = inp.policy
        self._kind = inspection_kind(inp.application.purpose, inp.application.guarantee_type)
        self._terms = inp.origination.approved
        self._book = inp.book
        self._state = inp.state.model_copy(deep=True)
        self._calendar = WorkflowCalendar(inp.policy.calendar, self._state.calendar_years)
        self._stage = (
            Stage.CLOSED
            if self._state.closed_on
            else Stage.WRITTEN_OFF
            if self._written_off()
            else Stage.REPAYING
        )
        self._steps: list[tuple[int, Callable[[], Awaitable[None]], Callable[[], None]]] = []
        self._steps_refused: dict[int, ApplicationError] = {}
        self._steps_accepted = 0
        self._steps_done: set[int] = set()
        self._closed_at: datetime | None = None
        self._lean = False
        self._searchable: tuple[object, ...] = ()  # what Temporal's list last showed

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: ServiceLoan) -> LoanOutcome:
        # Runs recorded before "lean" keep their commands: the sweep of arrears at band
        # events, D-2 notices per overdue installment, no stale reminders, bands counted from
        # the last review, local activities for the register and SMS, fewer search-attribute
        # upserts, and a run that ends on an event budget instead of after every event.
        self._lean = workflow.patched("lean")
        if inp.origination.stage is not Stage.REPAYING:
            await self._enter()
        if self._book.settled and self._stage in SERVICED:
            await self._close()
        while self._stage in SERVICED:
            at, event = self._next_event()
            if await self._wait_until(at):
                ends_run = await self._on_event(event)
                if self._lean:
                    ends_run = ends_run and self._over_budget()
            else:
                await self._take_steps()
                ends_run = self._steps_accepted >= MAX_STEPS_PER_RUN or (
                    workflow.info().is_continue_as_new_suggested()
                )
            if self._book.settled and self._stage in SERVICED:
                await self._close()
            if ends_run and self._stage in SERVICED:
                await self._finish_steps()
                if self._book.settled:  # a step applied just now paid the loan off
                    await self._close()
                    break
                workflow.continue_as_new(self._next_run())

        # P-7: the officer's final evaluation closes the archive; then the workflow ends.
        def archived() -> bool:
            return self._state.final_evaluation is not None and workflow.all_handlers_finished()

        while not archived():
            await workflow.wait_condition(lambda: bool(self._steps) or archived())
            await self._take_steps()
        return LoanOutcome(loan_id=self._loan_id, stage=self._stage, reasons=[])

    async def _enter(self) -> None:
        """The first run: K-1's first check for a business loan, and the register row."""
        workflow.logger.info("loan %s enters post-loan management", self._loan_id)
        first = first_check_due(self._disbursed_on(), self._kind, self._policy.inspection)
        if first is not None:
            self._open_inspection("first", first)
        await self._project()

    async def _on_event(self, event: str) -> bool:
        """Handle a dated event; True when the run should end after it."""
        kind, _, arg = event.partition(":")
        if kind == "reminder":
            await self._remind(arg)
            return False
        if kind == "due":
            await self._fall_due()
        elif kind == "inspection":
            self._open_inspection(
                "village" if self._micro_credit() else "routine", date.fromisoformat(arg)
            )
            await self._project()
        elif kind == "renotice":
            if self._lean:
                await self._collect_arrears(f"sweep/r{self._state.revision}")
            await self._send_overdue_notices()
            await self._project()
        elif kind == "receipt":
            self._state.notices[int(arg)].receipt_task_opened = True
            await self._project()
        elif kind == "escalate":
            self._state.warnings[int(arg)].escalated = True
            await self._project()
        else:  # a band of days past due: what reached the account meanwhile is taken first
            if self._lean:
                await self._collect_arrears(f"sweep/r{self._state.revision}")
            await self._review_standing()
        return True

    def _next_event(self) -> tuple[datetime | None, str]:
        """The next dated event; none when only a human step can move the loan on."""
        events: list[tuple[datetime, str]] = []
        upcoming = None if self._written_off() else self._book.next_installment
        if upcoming is not None:
            today = self._today()
            events += [
                (batch_time(r.send_on), f"reminder:{self._reminder_key(r)}")
                for r in self._reminders_for(upcoming)
                # A reminder whose day has passed (the loan was down, or caught up late)
                # would only confuse; the due date's own message follows.
                if self._reminder_key(r) not in self._state.reminders_sent
                and (r.send_on >= today or not self._lean)
            ]
            events.append((batch_time(upcoming.due_date), "due"))
        oldest = self._book.oldest_unpaid_due
        marks = (
            []
            if self._written_off()
            else band_changes(
                self._book,
                self._state.reviewed_dpd if self._lean else self._book.days_past_due(self._today()),
                self._policy,
            )
        )
        if oldest is not None and marks:
            events.append((batch_time(oldest + timedelta(days=marks[0])), "standing"))
        routine = None if self._written_off() else self._routine_check_due()
        if routine is not None:
            opens = routine - timedelta(days=self._policy.inspection.task_lead_days)
            events.append((batch_time(opens), f"inspection:{routine.isoformat()}"))
        if self._state.overdue_since is not None and self._state.notices:
            last = self._state.notices[-1].sent_on
            events.append(
                (batch_time(next_renotice(last, False, self._policy.collection)), "renotice")
            )
        for n, notice in enumerate(self._state.notices):
            if notice.receipt_on is None and not (notice.receipt_task_opened or notice.closed):
                late = receipt_deadline(notice.sent_on, self._policy.collection)
                events.append((batch_time(late + timedelta(days=1)), f"receipt:{n}"))
        for n, warning in enumerate(self._state.warnings):
            if warning.measure is None and not warning.escalated:
                events.append(
                    (batch_time(warning.escalate_by + timedelta(days=1)), f"escalate:{n}")
                )
        return min(events) if events else (None, "")

    def _over_budget(self) -> bool:
        """A run ends after a dated event once its history has reached the budget."""
        return workflow.info().get_current_history_length() >= RUN_EVENT_BUDGET

    async def _wait_until(self, at: datetime | None) -> bool:
        """True when ``at`` came; False when a human step arrived first."""
        try:
            await workflow.wait_condition(
                lambda: bool(self._steps),
                timeout=None if at is None else max(at - workflow.now(), timedelta(seconds=1)),
            )
        except TimeoutError:
            return True
        return False

    def _next_run(self) -> ServiceLoan:
        origination = self._inp.origination.model_copy(update={"stage": Stage.REPAYING})
        return self._inp.model_copy(
            update={"origination": origination, "book": self._book, "state": self._state}
        )

    # ------------------------------------------------------------------ repayment

    def _reminders_for(self, installment: Installment) -> list[Reminder]:
        assert self._terms is not None
        return [
            r
            for r in reminders(
                self._book.schedule,
                self._method(),
                self._terms.term_months + sum(e.months or 0 for e in self._signed_extensions()),
                self._policy,
            )
            if r.installment == installment.number
        ]

    @staticmethod
    def _reminder_key(reminder: Reminder) -> str:
        return f"{reminder.kind}-{reminder.installment}"

    async def _remind(self, key: str) -> None:
        """P-3: the interest reminder before each due date, the maturity notice before the last."""
        kind, _, number = key.partition("-")
        line = self._book.schedule[int(number) - 1]
        self._state.reminders_sent.append(key)
        payment = line.payment + self._book.arrears.total
        await self._send_sms(
            "interest_reminder" if kind == "interest" else "maturity_notice",
            # After a prepayment or an extension the figures change: a new text, a new key.
            f"reminder/{key}/{line.due_date}/{payment}",
            {
                "due_date": line.due_date,
                "payment": payment,
                "installment": line.number,
                "installments": len(self._book.schedule),
                "settlement_account_masked": self._account_masked(),
            },
        )

    async def _fall_due(self) -> None:
        """P-2: on the due date what is due is debited from the settlement account; P-6
        allocates it; whatever is left unpaid is overdue from the next day (P-5)."""
        line = self._book.next_installment
        assert line is not None
        extension = self._open_extension()
        if extension is not None and line.number == len(self._book.schedule):
            extension.outcome, extension.at = "lapsed", None  # not signed in time
        self._book = accrue_to(self._book, line.due_date, self._rate(), self._policy)
        owed = dues(self._book, line)
        collected = await self._collect(owed, f"due-{line.number}", line.due_date)
        self._book = apply_payment(self._book, collected, line)
        self._state.reminders_sent = []
        if self._book.settled:
            return
        if collected.applied == owed.total:
            upcoming = self._book.next_installment
            await self._send_sms(
                "installment_collected",
                f"due-{line.number}",
                {
                    "amount": collected.applied,
                    "due_date": line.due_date,
                    "next_due_date": upcoming.due_date if upcoming else None,
                    "next_payment": upcoming.payment if upcoming else None,
                },
            )
        else:
            await self._send_sms(
                "installment_unpaid",
                f"due-{line.number}",
                {
                    "collected": collected.applied,
                    "unpaid": owed.total - collected.applied,
                    "due_date": line.due_date,
                    "settlement_account_masked": self._account_masked(),
                },
            )
        await self._review_standing()

    async def _collect(self, owed: Dues, step: str, value_date: date) -> Allocation:
        """Debit what the settlement account holds, up to what is owed, allocated by P-6."""
        if owed.total <= 0:
            return Allocation()
        available: Decimal = await workflow.execute_activity_method(
            LedgerActivities.settlement_balance,
            SettlementBalanceInput(settlement_account=self._app.applicant.settlement_account),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        amount = min(available, owed.total)
        if amount <= 0:
            return Allocation()
        allocation = allocate(amount, owed, self._policy.repayment.allocation_order)
        return await self._post_collection(allocation, step, value_date)

    async def _post_collection(
        self, allocation: Allocation, step: str, value_date: date
    ) -> Allocation:
        """Post a collection and answer what was posted: the book follows the ledger.

        After a write-off the principal part is a recovery (Z-1) against the loss reserve
        and the interest parts are income, two entries. A posting refused because the funds
        left the account in between posts nothing; what is unpaid stays owed."""
        account = self._app.applicant.settlement_account
        zero = Decimal("0.00")
        principal = {"overdue_principal": zero, "current_principal": zero}
        posted = Allocation()
        rest = allocation
        recovered = allocation.overdue_principal + allocation.current_principal
        try:
            if self._written_off() and recovered > 0:
                await workflow.execute_activity_method(
                    LedgerActivities.post_recovery,
                    PostRecoveryInput(
                        idempotency_key=self._key(f"{step}/recovery"),
                        loan_id=self._loan_id,
                        settlement_account=account,
                        amount=recovered,
                        value_date=value_date,
                    ),
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=RETRY,
                )
                posted = Allocation(
                    overdue_principal=allocation.overdue_principal,
                    current_principal=allocation.current_principal,
                )
                rest = allocation.model_copy(update=principal)
            if rest.applied > 0:
                await workflow.execute_activity_method(
                    LedgerActivities.post_repayment,
                    PostRepaymentInput(
                        idempotency_key=self._key(step),
                        loan_id=self._loan_id,
                        settlement_account=account,
                        allocation=rest,
                        value_date=value_date,
                    ),
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=RETRY,
                )
                posted = allocation
        except ActivityError as failed:
            workflow.logger.error("loan %s: %s not collected: %s", self._loan_id, step, failed)
        return posted

    async def _collect_arrears(self, step: str) -> None:
        """Whatever is overdue is collected at once from what the account holds (P-6).
        A written-off loan no longer accrues penalty in the books (Z-1)."""
        if self._book.arrears.total <= 0:
            return
        today = self._today()
        if not self._written_off():
            self._book = accrue_to(self._book, today, self._rate(), self._policy)
        collected = await self._collect(dues(self._book), step, today)
        self._book = apply_payment(self._book, collected)
        if self._state.write_off is not None and self._written_off():
            self._state.write_off.recovered += collected.applied

    async def _take_payment(self, number: int, payment: RecordPayment) -> None:
        """The cash goes into the settlement account; arrears are collected from it at once,
        what is not yet due waits there for its due date (P-2, P-6)."""
        if payment.reference:
            self._state.payment_references.append(payment.reference)
        await workflow.execute_activity_method(
            LedgerActivities.post_deposit,
            PostDepositInput(
                idempotency_key=self._key(f"payment-{number}/deposit"),
                loan_id=self._loan_id,
                settlement_account=self._app.applicant.settlement_account,
                amount=payment.amount,
                value_date=self._today(),
                memo=f"柜面还款 {payment.reference}".strip(),
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        await self._collect_arrears(f"payment-{number}/arrears")
        await self._send_sms(
            "payment_received",
            f"payment-{number}",
            {
                "amount": payment.amount,
                "arrears": self._book.arrears.total,
                "settlement_account_masked": self._account_masked(),
            },
        )
        await self._review_standing()

    async def _call_in(self, why: str) -> None:
        """提前收回 (K-5, W-2): the whole balance is due today and collected as far as it can be."""
        workflow.logger.warning("loan %s called in: %s", self._loan_id, why)
        self._book = call_in(self._book, self._today(), self._rate(), self._policy)
        await self._collect_arrears(f"called-in/r{self._state.revision}")

    def _quote(self, amount: Decimal, on: date) -> PrepaymentQuote:
        """P-4, by the rules: raises ValueError when the amount cannot be a prepayment today."""
        assert self._terms is not None
        return prepay(
            self._book.schedule,
            self._book.billed,
            on,
            self._book.principal_outstanding,
            amount,
            self._rate(),
            self._method(),
            self._policy,
        )

    async def _prepay(self, record: PrepaymentRecord) -> None:
        """P-4: collect the quote from the settlement account; the schedule is recomputed."""
        today = self._today()
        record.done_on = today
        if self._book.arrears.total > 0:  # an installment fell overdue while the head decided
            record.outcome = "not made: arrears are settled before a prepayment (P-6)"
            return
        try:
            quote = self._quote(record.amount, today)
        except ValueError as reason:  # a due date passed while the head decided
            record.outcome = f"not made: {reason}"
            return
        available: Decimal = await workflow.execute_activity_method(
            LedgerActivities.settlement_balance,
            SettlementBalanceInput(settlement_account=self._app.applicant.settlement_account),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        if available < quote.total_due:
            record.outcome = f"not made: the account holds {available}, {quote.total_due} is due"
            return
        try:
            await workflow.execute_activity_method(
                LedgerActivities.post_repayment,
                PostRepaymentInput(
                    idempotency_key=self._key(record.task_key.rsplit(":", 1)[-1]),
                    loan_id=self._loan_id,
                    settlement_account=self._app.applicant.settlement_account,
                    allocation=Allocation(
                        current_interest=quote.interest_to_date,
                        current_principal=quote.principal_prepaid,
                    ),
                    fee=quote.fee,
                    value_date=today,
                    memo="提前还款",
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
            )
        except ActivityError as failed:  # the funds left the account in between
            record.outcome = f"not made: {failed.cause or failed}"
            return
        self._book = apply_prepayment(self._book, quote)
        self._state.reminders_sent = []
        record.outcome = "full" if quote.full else "partial"
        record.principal_prepaid, record.interest, record.fee = (
            quote.principal_prepaid,
            quote.interest_to_date,
            quote.fee,
        )

    def _written_off(self) -> bool:
        return self._state.write_off is not None and bool(self._state.write_off.approved)

    async def _write_off(self, record: WriteOffRecord) -> None:
        """Z-1 核销: the whole balance made due, its principal moved off the balance sheet
        against the loss reserve; the claim stays on record and recoveries go on."""
        today = self._today()
        self._book = call_in(self._book, today, self._rate(), self._policy)
        record.principal = self._book.arrears.overdue_principal
        await workflow.execute_activity_method(
            LedgerActivities.post_write_off,
            PostWriteOffInput(
                idempotency_key=self._key("write-off"),
                loan_id=self._loan_id,
                principal=record.principal,
                value_date=today,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        self._stage = Stage.WRITTEN_OFF
        for check in self._state.inspections:
            if check.done_on is None:
                check.done_on, check.done_by = today, "written off"

    # ------------------------------------------------------------------ extension (X-1..X-7)

    def _open_extension(self) -> ExtensionRecord | None:
        return next(
            (e for e in self._state.extensions if e.outcome in ("pending", "approved")), None
        )

    def _maturity(self) -> date:
        """The last due date; a loan prepaid in full before its first has the contract's."""
        if self._book.schedule:
            return self._book.schedule[-1].due_date
        maturity = self._inp.origination.maturity_date
        assert maturity is not None
        return maturity

    def _extension_at(self, step: str, rule: str, stages: set[Stage]) -> ExtensionRecord:
        extension = self._open_extension()
        if extension is None or extension.at not in stages:
            raise refuse(
                [
                    refusal(
                        rule,
                        f"no extension of loan {self._loan_id} awaits {step}",
                        ViolationKind.CONFLICT,
                    )
                ]
            )
        return extension

    def _check_route_actor(self, step: str, extension: ExtensionRecord, actor: Actor) -> None:
        """X-4: the same route and authority as the original; A-1 separation as before."""
        assert extension.at is not None
        role, branch = decision_actor(
            extension.at, self._tier(), self._branch(), self._prefecture_branch()
        )
        check_actor("X-4", step, actor, role, branch)
        refusals = check_separation(
            actor,
            borrower_household_id=self._app.applicant.household_id,
            investigators=set(),
            reviewers=set(extension.reviewers),
        )
        if refusals:
            raise refuse(refusals)

    def _record_route_step(
        self, extension: ExtensionRecord, step: str, actor: Actor, outcome: str, comment: str
    ) -> None:
        extension.steps.append(
            StepRecord(
                step=step,
                actor=actor.username,
                role=actor.role,
                at=workflow.now(),
                outcome=outcome,
                comment=comment,
            )
        )

    def _after_extension_review(self, extension: ExtensionRecord, outcome: ReviewOutcome) -> None:
        assert extension.at is not None
        if outcome is ReviewOutcome.RETURN:
            extension.outcome, extension.at = "refused", None
        else:
            extension.at = extension.route[extension.route.index(extension.at) + 1]

    def _signed_extensions(self) -> list[ExtensionRecord]:
        return [e for e in self._state.extensions if e.outcome == "signed"]

    def _method(self) -> RepaymentMethod:
        """The repayment method now: the original's, or the extension's (X-6)."""
        assert self._terms is not None
        signed = self._signed_extensions()
        if signed and signed[-1].repayment_method is not None:
            return signed[-1].repayment_method
        return self._terms.repayment_method

    def _tier(self) -> Tier:
        return self._inp.origination.tier

    def _original_amount(self) -> Decimal:
        assert self._terms is not None
        return self._terms.amount

    # ------------------------------------------------------------------ standing and collection

    async def _review_standing(self) -> None:
        """F-3: reclassify as days past due cross a band; F-2 lowers the household's score;
        arrears open the collection ladder (D-1), the notices (D-2) and a special check (K-4)."""
        view = self._view()
        today = self._today()
        self._state.reviewed_dpd = view.days_past_due
        if view.days_past_due >= 1 and self._state.overdue_since is None:
            await self._arrears_begin(today)
        elif self._book.arrears.total == 0 and self._state.overdue_since is not None:
            self._arrears_end(today)
        if self._written_off():
            await self._project()
            return
        if self._state.overdue_since is not None:
            if self._lean and self._book.installments_overdue > self._state.noticed_overdue:
                await self._send_overdue_notices()  # D-2: any new overdue, within 15 days
            self._state.noticed_overdue = self._book.installments_overdue
            await self._climb_ladder(view.days_past_due, today)
        for event in score_events_for_dpd(
            view.days_past_due, view.days_past_due, view.loan_class, set(self._state.score_events)
        ):
            await self._lower_score(event)
        await self._project()

    async def _arrears_begin(self, today: date) -> None:
        self._state.overdue_since = today
        self._state.noticed_overdue = self._book.installments_overdue
        self._open_inspection("special", today)  # K-4: at once
        await self._raise_warning(WarningSignal.OVERDUE_OR_ARREARS, "workflow", "逾期/欠息")
        await self._send_overdue_notices()  # D-2: well within the 15 days

    def _arrears_end(self, today: date) -> None:
        self._state.overdue_since = None
        self._state.noticed_overdue = 0
        for step in self._state.collection:
            if step.done_on is None:
                step.done_on, step.done_by, step.outcome = today, "workflow", "arrears repaid"
        for notice in self._state.notices:
            notice.closed = True

    async def _climb_ladder(self, days_past_due: int, today: date) -> None:
        """D-1: a new rung opens the officer's task with its working-day deadline; the
        first rung also reminds the borrower and tells the guarantors."""
        rung = rung_for(self._book.installments_overdue, days_past_due, self._policy.collection)
        since = self._state.overdue_since
        reached = [s.rung for s in self._state.collection if since and s.opened_on >= since]
        if rung is None or (reached and rung <= max(reached)):
            return
        calendar = await self._calendar.from_day(today)
        self._state.collection.append(
            CollectionStep(
                task_key=f"{self._loan_id}:collect:{since}:{rung.value}",
                rung=rung,
                required_actions=list(RUNG_ACTIONS[rung]),
                opened_on=today,
                due_on=rung_deadline(rung, today, calendar, self._policy.collection),
            )
        )
        if rung is Rung.REMINDER:
            arrears = self._book.arrears.total
            await self._send_sms(
                "overdue_reminder",
                f"overdue/{since}",
                {"arrears": arrears, "overdue_since": since},
            )
            for n, guarantor in enumerate(self._app.guarantors, start=1):
                await self._send_sms(
                    "guarantor_notice",
                    f"overdue/{since}/guarantor-{n}",
                    {"guarantor": guarantor.name, "arrears": arrears, "overdue_since": since},
                    phone=guarantor.phone,
                )

    async def _send_overdue_notices(self) -> None:
        """D-2/D-3: 逾期贷款催收通知书 to the borrower and each guarantor, with a receipt slip."""
        today = self._today()
        number = len(self._state.notices) + 1
        notice_key = f"{self._loan_id}:notice:{number}"
        recipients = [self._app.applicant.name, *(g.name for g in self._app.guarantors)]
        arrears = self._book.arrears
        for n, name in enumerate(recipients):
            try:
                await workflow.execute_activity_method(
                    NotificationActivities.issue_notice,
                    IssueNoticeInput(
                        idempotency_key=self._key(f"notice-{number}/{n}"),
                        loan_id=self._loan_id,
                        recipient=name,
                        template="overdue_notice",
                        context={
                            **self._context(),
                            "notice_number": notice_key,
                            "addressee": name,
                            "as_guarantor": n > 0,
                            "issued_on": today,
                            "overdue_since": self._book.oldest_unpaid_due,
                            "overdue_principal": arrears.overdue_principal,
                            "overdue_interest": arrears.overdue_interest,
                            "penalty": arrears.penalty_interest + arrears.compound_interest,
                            "total": arrears.total,
                        },
                    ),
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=RETRY,
                )
            except ActivityError as failed:
                workflow.logger.error(
                    "loan %s: overdue notice not issued: %s", self._loan_id, failed.cause
                )
        self._state.notices.append(
            NoticeRecord(notice_key=notice_key, sent_on=today, recipients=recipients)
        )

    async def _lower_score(self, event: ScoreEvent) -> None:
        """F-2: the household's score in the register, which later applications see."""
        standing = await workflow.execute_activity_method(
            RegisterActivities.record_credit_event,
            RecordCreditEventInput(
                idempotency_key=self._key(f"score/{event.value}"),
                household_id=self._app.applicant.household_id,
                loan_id=self._loan_id,
                event=event,
                occurred_on=self._today(),
                initial_score=self._app.credit_rating.score,
                policy=self._policy,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        before = self._grade()
        self._state.score_events.append(event)
        self._state.score = standing.score
        if self._grade() != before:
            await self._raise_warning(
                WarningSignal.GRADE_DOWNGRADE, "workflow", f"{before}→{self._grade()}"
            )

    # ------------------------------------------------------------------ inspections and warnings

    def _micro_credit(self) -> bool:
        return self._kind is InspectionKind.MICRO_CREDIT

    def _open_inspection(self, kind: str, due_on: date) -> None:
        number = len(self._state.inspections) + 1
        self._state.inspections.append(
            InspectionRecord(
                task_key=f"{self._loan_id}:inspection:{number}",
                kind=kind,  # type: ignore[arg-type]
                due_on=due_on,
            )
        )

    def _routine_check_due(self) -> date | None:
        """K-2/K-3: the next routine check, unless one is open already."""
        if any(i.done_on is None and i.kind != "special" for i in self._state.inspections):
            return None
        done = [i.done_on for i in self._state.inspections if i.done_on is not None]
        assert self._terms is not None
        return next_routine_check(
            max([self._disbursed_on(), *done]),
            self._kind,
            self._method(),
            self._grade(),
            self._view().loan_class,
            not self._state.collection and self._state.overdue_since is None,
            self._policy.inspection,
        )

    async def _raise_warning(self, signal: WarningSignal, raised_by: str, note: str) -> None:
        """W-1/W-2: a task for the branch head with a deadline; unresolved, it escalates."""
        today = self._today()
        calendar = await self._calendar.from_day(today)
        respond_by, escalate_by = signal_deadlines(today, calendar, self._policy.warning)
        number = len(self._state.warnings) + 1
        self._state.warnings.append(
            WarningRecord(
                task_key=f"{self._loan_id}:warning:{number}",
                signal=signal,
                raised_on=today,
                raised_by=raised_by,
                note=note,
                respond_by=respond_by,
                escalate_by=escalate_by,
            )
        )

    # ------------------------------------------------------------------ closure

    async def _close(self) -> None:
        """P-7: repaid in full: guarantees released, settlement certificate, household free."""
        self._stage = Stage.CLOSED
        today = self._today()
        self._state.closed_on = today
        self._arrears_end(today)
        for check in self._state.inspections:
            if check.done_on is None:
                check.done_on, check.done_by = today, "workflow"
        for step in self._state.collection:
            if step.done_on is None:
                step.done_on, step.done_by = today, "workflow"
        await workflow.execute_activity_method(
            RegisterActivities.release_household,
            ReleaseHouseholdInput(
                loan_id=self._loan_id, household_id=self._app.applicant.household_id
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        await self._issue_certificate()
        await self._send_sms("loan_settled", "settled", {"closed_on": today})
        await self._project()

    async def _issue_certificate(self) -> None:
        """P-7: 结清证明, printed for the borrower; guarantors and collateral are released."""
        repaid = self._book.repaid
        try:
            await workflow.execute_activity_method(
                NotificationActivities.issue_notice,
                IssueNoticeInput(
                    idempotency_key=self._key("settlement-certificate"),
                    loan_id=self._loan_id,
                    recipient=self._app.applicant.name,
                    template="settlement_certificate",
                    context={
                        **self._context(),
                        "amount": self._terms.amount if self._terms else repaid.principal,
                        "disbursed_on": self._disbursed_on(),
                        "closed_on": self._state.closed_on,
                        "principal": repaid.principal,
                        "interest": repaid.interest,
                        "penalty": repaid.penalty,
                        "guarantors": [g.name for g in self._app.guarantors],
                        "collateral": [c.description for c in self._app.collateral],
                    },
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
            )
        except ActivityError as failed:
            workflow.logger.error(
                "loan %s: settlement certificate not issued: %s", self._loan_id, failed.cause
            )

    # ------------------------------------------------------------------ human steps

    async def _accept(
        self, work: Callable[[], Awaitable[None]], recheck: Callable[[], None]
    ) -> LoanStatus:
        """Queue a validated step for the main loop and answer once it has been applied.

        Steps accepted together, or while a due date was being processed, were validated
        against the state before the ones ahead of them: each is checked again just before
        it is applied, and a step that no longer holds is refused (the update fails, the
        loan does not)."""
        self._steps_accepted += 1
        number = self._steps_accepted
        self._steps.append((number, work, recheck))
        await workflow.wait_condition(lambda: number in self._steps_done)
        refused = self._steps_refused.pop(number, None)
        if refused is not None:
            raise refused
        return self.status()

    async def _take_steps(self) -> None:
        while self._steps:
            number, work, recheck = self._steps.pop(0)
            try:
                recheck()
            except ApplicationError as refused:
                self._steps_refused[number] = refused
            else:
                await work()
            self._steps_done.add(number)

    async def _finish_steps(self) -> None:
        """Before the run ends, every accepted step is applied and its caller answered."""
        while self._steps or not workflow.all_handlers_finished():
            await workflow.wait_condition(
                lambda: bool(self._steps) or workflow.all_handlers_finished()
            )
            await self._take_steps()

    @workflow.update
    async def record_payment(self, inp: RecordPayment) -> LoanStatus:
        """A teller takes money for the loan at the counter (柜面还款).

        The receipt's reference is the payment's key: a resubmission is answered with the
        first result and posts nothing, even after the workflow has continued as new
        (workflows/step_keys.py); the loan keeps its receipts for life, so one taken long
        ago is refused. Runs from before step keys answered a resend by its update id."""
        update = workflow.current_update_info()
        if update is not None and update.id in self._state.payment_update_ids:
            return self.status()
        self._state.payments += 1
        number = self._state.payments
        return await self._accept(
            lambda: self._take_payment(number, inp), lambda: self._validate_record_payment(inp)
        )

    @record_payment.validator
    def _validate_payment_received(self, inp: RecordPayment) -> None:
        """The rules, and a receipt taken already (not re-checked when the payment's turn
        comes: recorded runs took one receipt several times, and must replay)."""
        self._validate_record_payment(inp)
        if inp.reference and inp.reference in self._state.payment_references:
            raise refuse(
                [
                    refusal(
                        "P-2",
                        f"receipt {inp.reference} was taken for this loan already; "
                        "one receipt, one deposit",
                        ViolationKind.CONFLICT,
                        "reference",
                    )
                ]
            )

    def _validate_record_payment(self, inp: RecordPayment) -> None:
        self._check_repaying("record_payment", "P-2", written_off_too=True)
        check_actor("P-2", "record_payment", inp.actor, Role.TELLER, self._branch())

    @workflow.update
    async def record_collection_action(self, inp: RecordCollectionAction) -> LoanStatus:
        """D-1/D-3: what the officer did on a rung of the ladder, or on a notice without receipt."""

        async def apply() -> None:
            today = self._today()
            for step in self._state.collection:
                if step.task_key == inp.task_key:
                    step.done_on, step.done_by = today, inp.actor.username
                    step.actions, step.outcome = list(inp.actions), inp.outcome
            for notice in self._state.notices:
                if self._follow_up_key(notice) == inp.task_key:
                    notice.follow_up = "; ".join([*inp.actions, inp.outcome])
            await self._project()

        return await self._accept(apply, lambda: self._validate_record_collection_action(inp))

    @record_collection_action.validator
    def _validate_record_collection_action(self, inp: RecordCollectionAction) -> None:
        self._check_repaying("record_collection_action", "D-1", written_off_too=True)
        self._check_open_task("D-1", inp.task_key, {"collect", "notice_follow_up"})
        check_actor("D-1", "record_collection_action", inp.actor, Role.LOAN_OFFICER, self._branch())

    @workflow.update
    async def record_notice_receipt(self, inp: RecordNoticeReceipt) -> LoanStatus:
        """D-3: the signed receipt came back; the limitation period is interrupted."""

        async def apply() -> None:
            for notice in self._state.notices:
                if notice.notice_key == inp.notice_key:
                    notice.receipt_on = inp.received_on
            await self._project()

        return await self._accept(apply, lambda: self._validate_record_notice_receipt(inp))

    @record_notice_receipt.validator
    def _validate_record_notice_receipt(self, inp: RecordNoticeReceipt) -> None:
        self._check_repaying("record_notice_receipt", "D-3", written_off_too=True)
        check_actor("D-3", "record_notice_receipt", inp.actor, Role.LOAN_OFFICER, self._branch())
        notice = next((n for n in self._state.notices if n.notice_key == inp.notice_key), None)
        if notice is None or notice.receipt_on is not None:
            raise refuse(
                [
                    refusal(
                        "D-3",
                        f"no notice {inp.notice_key} awaits a receipt on loan {self._loan_id}",
                        ViolationKind.CONFLICT,
                        "notice_key",
                    )
                ]
            )
        if not notice.sent_on <= inp.received_on <= self._today():
            raise refuse(
                [
                    refusal(
                        "D-3",
                        f"received_on {inp.received_on} must be between the notice's "
                        f"{notice.sent_on} and today",
                        ViolationKind.INVALID,
                        "received_on",
                    )
                ]
            )

    @workflow.update
    async def report_inspection(self, inp: ReportInspection) -> LoanStatus:
        """K-5: the check's findings; they may raise signals and call the loan in. F-3:
        every inspection reclassifies."""

        async def apply() -> None:
            record = next(i for i in self._state.inspections if i.task_key == inp.task_key)
            record.done_on, record.done_by = self._today(), inp.actor.username
            record.findings = inp.findings
            for signal in signals_from_findings(inp.findings):
                await self._raise_warning(signal, inp.actor.username, inp.findings.notes)
            if not inp.findings.purpose_kept and ScoreEvent.PURPOSE_CHANGED not in (
                self._state.score_events
            ):
                await self._lower_score(ScoreEvent.PURPOSE_CHANGED)
            if calls_loan_in(inp.findings):
                await self._call_in(f"misuse of funds found by {inp.actor.username} (K-5)")
            await self._review_standing()

        return await self._accept(apply, lambda: self._validate_report_inspection(inp))

    @report_inspection.validator
    def _validate_report_inspection(self, inp: ReportInspection) -> None:
        self._check_repaying("report_inspection", "K-5")
        self._check_open_task("K-5", inp.task_key, {"inspection", "village_inspection"})
        check_actor("K-5", "report_inspection", inp.actor, Role.LOAN_OFFICER, self._branch())

    @workflow.update
    async def raise_warning(self, inp: RaiseWarning) -> LoanStatus:
        """W-1: an officer raises a signal at any time; the head gets the task (W-2)."""

        async def apply() -> None:
            await self._raise_warning(inp.signal, inp.actor.username, inp.note)
            await self._project()

        return await self._accept(apply, lambda: self._validate_raise_warning(inp))

    @raise_warning.validator
    def _validate_raise_warning(self, inp: RaiseWarning) -> None:
        self._check_repaying("raise_warning", "W-1")
        check_actor("W-1", "raise_warning", inp.actor, Role.LOAN_OFFICER, self._branch())

    @workflow.update
    async def decide_warning(self, inp: DecideWarning) -> LoanStatus:
        """W-2: the measure on a signal; calling the loan in makes the whole balance due."""

        async def apply() -> None:
            warning = self._warning(inp.task_key)
            warning.measure, warning.decided_by = inp.measure, inp.actor.username
            warning.decided_on = self._today()
            warning.note = f"{warning.note}; {inp.note}".strip("; ")
            if inp.measure is WarningMeasure.CALL_IN_EARLY:
                await self._call_in(f"{warning.signal.value}: {inp.note}")
            await self._review_standing()

        return await self._accept(apply, lambda: self._validate_decide_warning(inp))

    @decide_warning.validator
    def _validate_decide_warning(self, inp: DecideWarning) -> None:
        self._check_repaying("decide_warning", "W-2")
        self._check_open_task("W-2", inp.task_key, {"warning", "warning_escalated"})
        warning = self._warning(inp.task_key)
        role = Role.POST_LOAN_MANAGER if warning.escalated else Role.BRANCH_HEAD
        check_actor("W-2", "decide_warning", inp.actor, role, self._branch())

    @workflow.update
    async def classify_loan(self, inp: ClassifyLoan) -> LoanStatus:
        """F-1: a reviewer's judgement puts the loan lower (never higher), with the reason."""

        async def apply() -> None:
            self._state.judged_class = inp.loan_class
            self._state.judgement_reason = inp.reason
            await self._review_standing()

        return await self._accept(apply, lambda: self._validate_classify_loan(inp))

    @classify_loan.validator
    def _validate_classify_loan(self, inp: ClassifyLoan) -> None:
        self._check_repaying("classify_loan", "F-1")
        check_actor("F-1", "classify_loan", inp.actor, Role.REVIEWER, self._branch())
        floor = standing_on(self._book, self._today(), None, self._state.extended, self._policy)
        refusals = check_judgement(inp.loan_class, floor.loan_class, inp.reason)
        if refusals:
            raise refuse(refusals)

    @workflow.update
    async def mark_wilful_default(self, inp: MarkWilfulDefault) -> LoanStatus:
        """D-5: a wilful defaulter's household goes on the blacklist; intake refuses it."""

        async def apply() -> None:
            await workflow.execute_activity_method(
                RegisterActivities.blacklist_household,
                BlacklistHouseholdInput(
                    household_id=self._app.applicant.household_id,
                    loan_id=self._loan_id,
                    reason=inp.reason,
                    listed_by=inp.actor.username,
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
            )
            self._state.blacklisted = True
            await self._project()

        return await self._accept(apply, lambda: self._validate_mark_wilful_default(inp))

    @mark_wilful_default.validator
    def _validate_mark_wilful_default(self, inp: MarkWilfulDefault) -> None:
        self._check_repaying("mark_wilful_default", "D-5")
        check_actor("D-5", "mark_wilful_default", inp.actor, Role.BRANCH_HEAD, self._branch())
        if self._state.overdue_since is None or self._state.blacklisted:
            raise refuse(
                [
                    refusal(
                        "D-5",
                        "only a borrower in arrears, not yet blacklisted, can be found a wilful "
                        "defaulter",
                        ViolationKind.CONFLICT,
                    )
                ]
            )

    @workflow.update
    async def request_prepayment(self, inp: RequestPrepayment) -> LoanStatus:
        """P-4: a prepayment asked for; made at once, or after the head's consent."""

        async def apply() -> None:
            record = PrepaymentRecord(
                task_key=f"{self._loan_id}:prepayment-{len(self._state.prepayments) + 1}",
                amount=inp.amount,
                requested_on=self._today(),
                requested_by=inp.actor.username,
            )
            self._state.prepayments.append(record)
            if not self._policy.repayment.prepayment_needs_consent:
                record.consent = True
                await self._prepay(record)
            await self._review_standing()

        return await self._accept(apply, lambda: self._validate_request_prepayment(inp))

    @request_prepayment.validator
    def _validate_request_prepayment(self, inp: RequestPrepayment) -> None:
        self._check_repaying("request_prepayment", "P-4")
        check_actor("P-4", "request_prepayment", inp.actor, Role.LOAN_OFFICER, self._branch())
        problem = None
        if self._book.arrears.total > 0:
            problem = "the arrears are settled before any prepayment (P-6)"
        elif any(p.done_on is None for p in self._state.prepayments):
            problem = "a prepayment already awaits the head's consent"
        else:
            try:
                self._quote(inp.amount, self._today())
            except ValueError as reason:
                problem = str(reason)
        if problem:
            raise refuse([refusal("P-4", problem, ViolationKind.CONFLICT, "amount")])

    @workflow.update
    async def decide_prepayment(self, inp: DecidePrepayment) -> LoanStatus:
        """P-4: the cooperative's consent; with it the prepayment is collected at once."""

        async def apply() -> None:
            record = next(p for p in self._state.prepayments if p.done_on is None)
            record.consent, record.decided_by = inp.consent, inp.actor.username
            if inp.consent:
                await self._prepay(record)
            else:
                record.done_on, record.outcome = self._today(), f"refused: {inp.note}"
            await self._review_standing()

        return await self._accept(apply, lambda: self._validate_decide_prepayment(inp))

    @decide_prepayment.validator
    def _validate_decide_prepayment(self, inp: DecidePrepayment) -> None:
        self._check_repaying("decide_prepayment", "P-4")
        check_actor("P-4", "decide_prepayment", inp.actor, Role.BRANCH_HEAD, self._branch())
        if not any(p.done_on is None for p in self._state.prepayments):
            raise refuse([refusal("P-4", "no prepayment awaits consent", ViolationKind.CONFLICT)])

    @workflow.update
    async def propose_write_off(self, inp: ProposeWriteOff) -> LoanStatus:
        """Z-1: a 损失 loan proposed for write-off; the credit-management tier decides."""

        async def apply() -> None:
            self._state.write_off = WriteOffRecord(
                task_key=f"{self._loan_id}:write-off",
                proposed_on=self._today(),
                proposed_by=inp.actor.username,
                reason=inp.reason,
            )
            await self._project()

        return await self._accept(apply, lambda: self._validate_propose_write_off(inp))

    @propose_write_off.validator
    def _validate_propose_write_off(self, inp: ProposeWriteOff) -> None:
        self._check_repaying("propose_write_off", "Z-1")
        check_actor("Z-1", "propose_write_off", inp.actor, Role.POST_LOAN_MANAGER, self._branch())
        loan_class = self._view().loan_class
        pending = self._state.write_off is not None and self._state.write_off.approved is None
        if self._book.principal_outstanding <= 0:
            raise refuse(
                [refusal("Z-1", "no principal is left to write off", ViolationKind.CONFLICT)]
            )
        if loan_class is not LoanClass.LOSS or pending:
            raise refuse(
                [
                    refusal(
                        "Z-1",
                        "a write-off is already proposed"
                        if pending
                        else f"only a 损失 (loss) loan may be written off; this one is "
                        f"{CLASS_NAMES[loan_class]} ({loan_class.value})",
                        ViolationKind.CONFLICT,
                    )
                ]
            )

    @workflow.update
    async def decide_write_off(self, inp: DecideWriteOff) -> LoanStatus:
        """Z-1: approved, the loan leaves the balance sheet (账销案存); refused, it stays."""

        async def apply() -> None:
            record = self._state.write_off
            assert record is not None
            record.approved, record.decided_by = inp.approve, inp.actor.username
            record.decided_on = self._today()
            if inp.approve:
                await self._write_off(record)
            else:
                self._state.write_off = None
                workflow.logger.info("loan %s: write-off refused: %s", self._loan_id, inp.note)
            await self._project()

        return await self._accept(apply, lambda: self._validate_decide_write_off(inp))

    @decide_write_off.validator
    def _validate_decide_write_off(self, inp: DecideWriteOff) -> None:
        self._check_repaying("decide_write_off", "Z-1")
        record = self._state.write_off
        if record is None or record.approved is not None:
            raise refuse([refusal("Z-1", "no write-off awaits a decision", ViolationKind.CONFLICT)])
        check_actor("Z-1", "decide_write_off", inp.actor, Role.APPROVER, self._prefecture_branch())

    @workflow.update
    async def request_extension(self, inp: RequestExtension) -> LoanStatus:
        """X-1: a request for an extension (展期申请); it goes the original's route (X-4)."""

        async def apply() -> None:
            route = decision_stages(self._tier())
            self._state.extensions.append(
                ExtensionRecord(
                    key_prefix=f"{self._loan_id}:x{len(self._state.extensions) + 1}",
                    requested_on=self._today(),
                    requested_by=inp.actor.username,
                    request=self._extension_request(inp),
                    route=route,
                    at=route[0],
                )
            )
            await self._project()

        return await self._accept(apply, lambda: self._validate_request_extension(inp))

    @request_extension.validator
    def _validate_request_extension(self, inp: RequestExtension) -> None:
        self._check_repaying("request_extension", "X-1")
        check_actor("X-1", "request_extension", inp.actor, Role.LOAN_OFFICER, self._branch())
        if self._open_extension() is not None:
            raise refuse(
                [refusal("X-7", "an extension request is already open", ViolationKind.CONFLICT)]
            )
        assert self._terms is not None
        refusals = check_extension_request(
            self._extension_request(inp),
            maturity=self._maturity(),
            original_term_months=self._terms.term_months,
            loan_class=self._view().loan_class,
            extensions_so_far=sum(e.outcome == "signed" for e in self._state.extensions),
            policy=self._policy,
            has_guarantor=bool(self._app.guarantors),
        )
        if refusals:
            raise refuse(refusals)

    def _extension_request(self, inp: RequestExtension) -> ExtensionRequest:
        return ExtensionRequest(
            requested_on=self._today(),
            months=inp.months,
            reason=inp.reason,
            guarantor_consent=inp.guarantor_consent,
        )

    @workflow.update
    async def review_loan(self, inp: SubmitReview) -> LoanStatus:
        """X-4: the reviewer's opinion on an extension, as on the original (审查)."""

        async def apply() -> None:
            extension = self._extension_at("review_loan", "X-4", REVIEWS)
            self._record_route_step(
                extension, "review", inp.actor, inp.review.outcome, inp.review.comment
            )
            extension.reviewers.append(inp.actor.username)
            self._after_extension_review(extension, inp.review.outcome)
            await self._project()

        return await self._accept(apply, lambda: self._validate_review_loan(inp))

    @review_loan.validator
    def _validate_review_loan(self, inp: SubmitReview) -> None:
        self._check_repaying("review_loan", "X-4")
        extension = self._extension_at("review_loan", "X-4", REVIEWS)
        self._check_route_actor("review_loan", extension, inp.actor)

    @workflow.update
    async def confirm_as_branch_head(self, inp: ConfirmAsBranchHead) -> LoanStatus:
        """X-4: the branch head's confirmation, on the prefecture route as on the original."""

        async def apply() -> None:
            extension = self._extension_at(
                "confirm_as_branch_head", "X-4", {Stage.BRANCH_CONFIRMATION}
            )
            self._record_route_step(
                extension,
                "branch_confirmation",
                inp.actor,
                inp.review.outcome,
                inp.review.comment,
            )
            extension.reviewers.append(inp.actor.username)
            self._after_extension_review(extension, inp.review.outcome)
            await self._project()

        return await self._accept(apply, lambda: self._validate_confirm_as_branch_head(inp))

    @confirm_as_branch_head.validator
    def _validate_confirm_as_branch_head(self, inp: ConfirmAsBranchHead) -> None:
        self._check_repaying("confirm_as_branch_head", "X-4")
        extension = self._extension_at("confirm_as_branch_head", "X-4", {Stage.BRANCH_CONFIRMATION})
        self._check_route_actor("confirm_as_branch_head", extension, inp.actor)

    @workflow.update
    async def decide_loan(self, inp: DecideLoan) -> LoanStatus:
        """X-4: the approver's decision on an extension, within the original's authority."""

        async def apply() -> None:
            extension = self._extension_at("decide_loan", "X-4", {Stage.APPROVAL})
            decision = inp.decision
            comment = decision.reason or "; ".join(decision.conditions)
            self._record_route_step(extension, "decision", inp.actor, decision.outcome, comment)
            extension.at = None
            if decision.outcome is DecisionOutcome.APPROVE:
                assert decision.term_months is not None and self._terms is not None
                extension.outcome = "approved"
                extension.months = decision.term_months
                extension.annual_rate = decision.annual_rate
                extension.repayment_method = (
                    decision.repayment_method or self._terms.repayment_method
                )
                extension.new_maturity = extended_maturity(self._maturity(), decision.term_months)
            else:
                extension.outcome = "refused"
            await self._project()

        return await self._accept(apply, lambda: self._validate_decide_loan(inp))

    @decide_loan.validator
    def _validate_decide_loan(self, inp: DecideLoan) -> None:
        self._check_repaying("decide_loan", "X-4")
        extension = self._extension_at("decide_loan", "X-4", {Stage.APPROVAL})
        self._check_route_actor("decide_loan", extension, inp.actor)
        refusals = check_authority(inp.actor, self._original_amount(), self._tier())
        loan_class = self._view().loan_class
        if loan_class not in EXTENDABLE_CLASSES and inp.decision.outcome is DecisionOutcome.APPROVE:
            refusals.append(
                refusal(
                    "X-2",
                    f"the loan is now classified {CLASS_NAMES[loan_class]}; only 正常 or 关注 "
                    "loans may be extended",
                    ViolationKind.CONFLICT,
                )
            )
        decision = inp.decision
        if decision.outcome is DecisionOutcome.APPROVE:
            assert decision.term_months is not None and decision.amount is not None
            assert self._terms is not None
            if decision.term_months > extension.request.months:
                refusals.append(
                    refusal(
                        "X-3",
                        f"{decision.term_months} months exceed the {extension.request.months} "
                        "requested",
                        ViolationKind.INVALID,
                        "decision.term_months",
                    )
                )
            if decision.amount != self._book.principal_outstanding:
                refusals.append(
                    refusal(
                        "X-6",
                        f"an extension extends the outstanding principal "
                        f"{self._book.principal_outstanding}, not {decision.amount}",
                        ViolationKind.INVALID,
                        "decision.amount",
                    )
                )
            refusals += check_extension_method(
                decision.repayment_method or self._terms.repayment_method,
                self._period_start(),
                extended_maturity(self._maturity(), decision.term_months),
                self._policy,
            )
        if refusals:
            raise refuse(refusals)

    @workflow.update
    async def sign_contract(self, inp: SignContract) -> LoanStatus:
        """X-5/X-6: the extension agreement (借款展期协议) signed before maturity; the loan is
        then managed as a new loan on a new schedule, classified at best 关注."""

        async def apply() -> None:
            extension = self._open_extension()
            assert extension is not None and extension.new_maturity is not None
            assert extension.annual_rate is not None and extension.repayment_method is not None
            start = self._period_start()
            lines = extension_schedule(
                self._book.principal_outstanding,
                extension.annual_rate,
                extension.repayment_method,
                start,
                extension.new_maturity,
                self._policy,
            )
            billed = self._book.billed
            renumbered = [
                line.model_copy(update={"number": billed + line.number}) for line in lines
            ]
            schedule = [*self._book.schedule[:billed], *renumbered]
            self._book = self._book.model_copy(update={"schedule": schedule})
            extension.outcome = "signed"
            extension.signed_on = inp.signing.signed_on
            extension.agreement_number = inp.signing.contract_number
            self._state.extended = True
            self._state.reminders_sent = []
            await self._review_standing()

        return await self._accept(apply, lambda: self._validate_sign_contract(inp))

    @sign_contract.validator
    def _validate_sign_contract(self, inp: SignContract) -> None:
        self._check_repaying("sign_contract", "X-5")
        extension = self._open_extension()
        if extension is None or extension.outcome != "approved":
            raise refuse(
                [
                    refusal(
                        "X-5", "no approved extension awaits its agreement", ViolationKind.CONFLICT
                    )
                ]
            )
        check_actor("X-5", "sign_contract", inp.actor, Role.LOAN_OFFICER, self._branch())
        if self._book.next_installment is None:
            raise refuse([refusal("X-5", "the loan has reached maturity", ViolationKind.CONFLICT)])
        refusals = check_agreement_signed(inp.signing.signed_on, self._maturity())
        assert extension.repayment_method is not None and extension.new_maturity is not None
        # The extended schedule runs from the current period; a due date passed since the
        # approval can make the method unfit for the shorter rest (E-14, X-6).
        refusals += check_extension_method(
            extension.repayment_method, self._period_start(), extension.new_maturity, self._policy
        )
        if inp.signing.signed_on > self._today():
            refusals.append(
                refusal("X-5", "signed_on is in the future", ViolationKind.INVALID, "signed_on")
            )
        if self._app.guarantors and not inp.signing.guarantee_contracts_signed:
            refusals.append(
                refusal(
                    "X-1",
                    "the guarantor signs the extension agreement too",
                    ViolationKind.INVALID,
                    "guarantee_contracts_signed",
                )
            )
        if self._book.arrears.total > 0:
            refusals.append(
                refusal(
                    "X-6",
                    "arrears are paid before an extension; interest is never capitalised",
                    ViolationKind.CONFLICT,
                )
            )
        if refusals:
            raise refuse(refusals)

    def _sign_by(self) -> date:
        """X-5: the agreement is signed before the original maturity."""
        return self._maturity() - timedelta(days=1)

    def _period_start(self) -> date:
        """Where the current period began: the extended schedule runs from here (X-6)."""
        upcoming = self._book.next_installment
        assert upcoming is not None
        return upcoming.due_date - timedelta(days=upcoming.days)

    @workflow.update
    async def hand_over(self, inp: HandOver) -> LoanStatus:
        """H-1 责任移交: the loan and its open tasks move to the successor; later tasks too."""

        async def apply() -> None:
            self._state.handovers.append(
                HandoverRecord(
                    from_officer=self._officer(),
                    to_officer=inp.successor.username,
                    signed_by_head=inp.actor.username,
                    on=self._today(),
                )
            )
            await self._project()

        return await self._accept(apply, lambda: self._validate_hand_over(inp))

    @hand_over.validator
    def _validate_hand_over(self, inp: HandOver) -> None:
        check_actor("H-1", "hand_over", inp.actor, Role.BRANCH_HEAD, self._branch())
        check_handover(inp, self._officer(), self._branch())

    @workflow.update
    async def submit_final_evaluation(self, inp: SubmitFinalEvaluation) -> LoanStatus:
        """P-7: the last note on a repaid loan (终结评价); the archive closes with it."""

        async def apply() -> None:
            self._state.final_evaluation = inp.evaluation
            self._closed_at = workflow.now()
            await self._project()

        return await self._accept(apply, lambda: self._validate_submit_final_evaluation(inp))

    @submit_final_evaluation.validator
    def _validate_submit_final_evaluation(self, inp: SubmitFinalEvaluation) -> None:
        if self._stage is not Stage.CLOSED or self._state.final_evaluation is not None:
            raise refuse(
                [
                    refusal(
                        "P-7",
                        f"loan {self._loan_id} is not awaiting its final evaluation "
                        f"(stage '{self._stage.value}')",
                        ViolationKind.CONFLICT,
                    )
                ]
            )
        check_actor("P-7", "submit_final_evaluation", inp.actor, Role.LOAN_OFFICER, self._branch())

    def _check_repaying(self, step: str, rule: str, *, written_off_too: bool = False) -> None:
        allowed = SERVICED if written_off_too else {Stage.REPAYING}
        if self._stage not in allowed:
            raise refuse(
                [
                    refusal(
                        rule,
                        f"loan {self._loan_id} is {self._stage.value}; {step} is refused",
                        ViolationKind.CONFLICT,
                    )
                ]
            )

    def _check_open_task(self, rule: str, task_key: str, kinds: set[str]) -> None:
        if not any(t.task_key == task_key and t.kind in kinds for t in self._open_tasks()):
            raise refuse(
                [
                    refusal(
                        rule,
                        f"task {task_key} is not open on loan {self._loan_id}",
                        ViolationKind.CONFLICT,
                        "task_key",
                    )
                ]
            )

    # ------------------------------------------------------------------ views

    @property
    def step_ids(self) -> list[str]:
        """The steps this loan has applied, carried across runs (workflows/step_keys.py)."""
        return self._state.step_ids

    @step_ids.setter
    def step_ids(self, ids: list[str]) -> None:
        self._state.step_ids = ids

    @workflow.query
    def status(self) -> LoanStatus:
        return self._inp.origination.model_copy(
            update={
                "stage": self._stage,
                "schedule": list(self._book.schedule),
                "open_tasks": self._open_tasks(),
                "officer": self._officer(),
                "maturity_date": self._maturity(),
                "servicing": self._view(),
                "closed_at": self._closed_at,
            }
        )

    def _view(self) -> ServicingView:
        """Where the loan stands today, penalty and compound interest accrued to today."""
        figures = figures_on(self._account(), self._today())
        upcoming = self._book.next_installment
        return ServicingView(
            today=figures.on,
            days_past_due=figures.days_past_due,
            loan_class=figures.loan_class,
            bucket=figures.bucket,
            principal_outstanding=self._book.principal_outstanding,
            arrears=figures.arrears,
            penalty_interest=figures.penalty_interest,
            compound_interest=figures.compound_interest,
            next_due_date=upcoming.due_date if upcoming else None,
            next_payment=upcoming.payment if upcoming else None,
            installments_overdue=self._book.installments_overdue,
            repaid=self._book.repaid,
            payments=self._state.payments,
            closed_on=self._state.closed_on,
            final_evaluation=self._state.final_evaluation,
            overdue_since=self._state.overdue_since,
            called_in_on=self._book.called_in_on,
            score=self._state.score,
            blacklisted=self._state.blacklisted,
            collection=self._state.collection,
            notices=self._state.notices,
            inspections=self._state.inspections,
            warnings=self._state.warnings,
            prepayments=self._state.prepayments,
            write_off=self._state.write_off,
            extensions=self._state.extensions,
            handovers=self._state.handovers,
        )

    def _account(self) -> AccountAsOf:
        """The book and what brings its figures to a later day, for the register's readers."""
        return AccountAsOf(
            as_of=self._today(),
            book=self._book,
            annual_rate=self._rate(),
            judged_class=self._state.judged_class,
            extended=self._state.extended,
            accruing=not self._written_off(),
            policy=self._policy,
        )

    def _open_tasks(self) -> list[TaskSpec]:
        """The inbox (待办): each open record of the state is one task."""
        branch = self._branch()
        if self._stage is Stage.CLOSED:
            if self._state.final_evaluation is not None:
                return []
            return [self._task(f"{self._loan_id}:final-evaluation", "final_evaluation", None)]
        tasks = [
            self._task(
                i.task_key,
                "village_inspection" if i.kind == "village" else "inspection",
                i.due_on,
            )
            for i in self._state.inspections
            if i.done_on is None
        ]
        tasks += [
            self._task(s.task_key, "collect", s.due_on)
            for s in self._state.collection
            if s.done_on is None
        ]
        tasks += [
            self._task(self._follow_up_key(n), "notice_follow_up", None)
            for n in self._state.notices
            if n.receipt_task_opened and n.receipt_on is None and not (n.follow_up or n.closed)
        ]
        tasks += [
            TaskSpec(
                task_key=p.task_key,
                kind="consent_prepayment",
                role=Role.BRANCH_HEAD,
                branch_code=branch,
            )
            for p in self._state.prepayments
            if p.done_on is None
        ]
        extension = self._open_extension()
        if extension is not None and extension.at is not None:
            approving = extension.at is Stage.APPROVAL
            tasks.append(
                decision_task(
                    extension.at,
                    extension.key_prefix,
                    self._tier(),
                    branch,
                    self._prefecture_branch(),
                    due=self._sign_by(),
                    amount=self._original_amount(),
                    excluded=list(extension.reviewers) if approving else [],
                )
            )
        elif extension is not None:
            tasks.append(
                self._task(
                    f"{extension.key_prefix}:sign",
                    "sign_contract",
                    self._maturity() - timedelta(days=1),
                )
            )
        write_off = self._state.write_off
        if write_off is not None and write_off.approved is None:
            tasks.append(
                TaskSpec(
                    task_key=write_off.task_key,
                    kind="approve_write_off",
                    role=Role.APPROVER,
                    branch_code=self._prefecture_branch(),
                )
            )
        if self._written_off():
            return [t for t in tasks if t.kind == "notice_follow_up"]
        for w in self._state.warnings:
            if w.measure is None:
                escalated = w.escalated
                tasks.append(
                    TaskSpec(
                        task_key=f"{w.task_key}:escalated" if escalated else w.task_key,
                        kind="warning_escalated" if escalated else "warning",
                        role=Role.POST_LOAN_MANAGER if escalated else Role.BRANCH_HEAD,
                        branch_code=branch,
                        due_date=None if escalated else w.respond_by,
                    )
                )
        return tasks

    def _task(self, key: str, kind: str, due: date | None) -> TaskSpec:
        """An officer's task, assigned to the loan's own officer (H-1)."""
        return TaskSpec(
            task_key=key,
            kind=kind,
            role=Role.LOAN_OFFICER,
            branch_code=self._branch(),
            due_date=due,
            assignee=self._officer(),
        )

    def _officer(self) -> str:
        """The loan's officer (管户客户经理) now: the last successor, or the original."""
        handovers = self._state.handovers
        return handovers[-1].to_officer if handovers else self._inp.origination.officer

    def _warning(self, task_key: str) -> WarningRecord:
        base = task_key.removesuffix(":escalated")
        return next(w for w in self._state.warnings if w.task_key == base)

    def _follow_up_key(self, notice: NoticeRecord) -> str:
        return f"{notice.notice_key}:follow-up"

    # ------------------------------------------------------------------ effects

    async def _project(self) -> None:
        """The register row (class, bucket, balances) and the inbox; newer revisions win."""
        self._state.revision += 1
        status = self.status()
        shown = (status.stage, status.officer, tuple(t.role for t in status.open_tasks[:1]))
        if not self._lean or shown != self._searchable:
            workflow.upsert_search_attributes(loan_search_attributes(status))
            self._searchable = shown
        projection = loan_projection(status, self._app, self._state.revision, self._account())
        if self._lean:  # an idempotent write of one row: no task round trip needed
            await workflow.execute_local_activity_method(
                RegisterActivities.project_loan,
                projection,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
            )
        else:
            await workflow.execute_activity_method(
                RegisterActivities.project_loan,
                projection,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
            )

    async def _send_sms(
        self, template: str, step: str, context: dict[str, object], phone: str | None = None
    ) -> None:
        """Tell the borrower (or a guarantor); a text that cannot be sent never stops the loan."""
        try:
            await workflow.execute_activity_method(
                NotificationActivities.send_sms,
                SendSmsInput(
                    idempotency_key=self._key(f"sms/{step}"),
                    loan_id=self._loan_id,
                    phone=phone or self._app.applicant.phone,
                    template=template,
                    context={**self._context(), **context},
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
            )
        except ActivityError as failed:
            workflow.logger.error(
                "loan %s: SMS %s not sent: %s", self._loan_id, template, failed.cause
            )

    # ------------------------------------------------------------------ helpers

    def _context(self) -> dict[str, object]:
        return {
            "name": self._app.applicant.name,
            "loan_id": self._loan_id,
            "institution": self._policy.institution,
        }

    def _grade(self) -> CreditGrade:
        score = self._app.credit_rating.score if self._state.score is None else self._state.score
        return credit_grade(score, self._policy.eligibility)

    def _account_masked(self) -> str:
        return "****" + self._app.applicant.settlement_account[-4:]

    def _rate(self) -> Decimal:
        """The contract rate now: the original's, or as the extension set it (X-6)."""
        assert self._terms is not None
        signed = self._signed_extensions()
        if signed and signed[-1].annual_rate is not None:
            return signed[-1].annual_rate
        return self._terms.annual_rate

    def _branch(self) -> str:
        return self._inp.origination.branch_code

    def _prefecture_branch(self) -> str:
        """The credit-management tier above the branch (二级分行), as at origination (A-2)."""
        return self._inp.origination.prefecture_code or self._branch()

    def _disbursed_on(self) -> date:
        disbursed_at = self._inp.origination.disbursed_at
        assert disbursed_at is not None
        return china_date(disbursed_at)

    def _today(self) -> date:
        return china_date(workflow.now())

    def _key(self, step: str) -> str:
        """Idempotency key of an outside effect: the workflow id plus the step."""
        return f"{workflow_id_for(self._loan_id)}/{step}"
