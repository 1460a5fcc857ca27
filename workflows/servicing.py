"""Post-loan management (贷后管理): the loan's workflow after disbursement, to closure.

The loan's workflow continues as new into this one when the money is paid out, and again
after every due date and every change of band, carrying only the ``LoanBook`` and a few
flags, so a run's history stays short however long the loan runs (bounded history).
Everything happens on timers: reminders before each due date (P-3), the debit on the
date (P-2) allocated by P-6, penalty and compound interest by the day (P-5), the class,
bucket and score as days past due grow (F-1, D-4, F-2), and closure (P-7).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import (
        LedgerActivities,
        PostDepositInput,
        PostRepaymentInput,
        SettlementBalanceInput,
    )
    from activities.notifications import IssueNoticeInput, NotificationActivities, SendSmsInput
    from activities.register import (
        RecordCreditEventInput,
        RegisterActivities,
        ReleaseHouseholdInput,
        TaskSpec,
    )
    from domain.allocation import Allocation, Dues, allocate
    from domain.calendar import CHINA, china_date
    from domain.classification import score_events_for_dpd
    from domain.errors import ViolationKind
    from domain.loan import ENDED_STAGES, Installment, Role, Stage
    from domain.reminders import Reminder, reminders
    from domain.servicing import (
        accrue_to,
        apply_payment,
        band_changes,
        dues,
        standing_on,
    )
    from workflows.messages import (
        LoanOutcome,
        LoanStatus,
        RecordPayment,
        ServiceLoan,
        ServicingView,
        SubmitFinalEvaluation,
        workflow_id_for,
    )
    from workflows.projection import loan_projection, loan_search_attributes
    from workflows.refusals import check_actor, refusal, refuse

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
ACTIVITY_TIMEOUT = timedelta(seconds=30)
# The day's servicing batch (reminders, debits, reclassification) runs at this hour, China time.
BATCH_HOUR = time(9, 0)
# A run ends early when Temporal suggests it, or after this many payments, whichever first.
MAX_PAYMENTS_PER_RUN = 20


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
        self._terms = inp.origination.approved
        self._book = inp.book
        self._state = inp.state.model_copy(deep=True)
        self._stage = Stage.CLOSED if self._state.closed_on else Stage.REPAYING
        self._payments: list[tuple[int, RecordPayment]] = []
        self._payments_done: set[int] = set()
        self._payments_this_run = 0
        self._closed_at: datetime | None = None

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: ServiceLoan) -> LoanOutcome:
        if inp.origination.stage is not Stage.REPAYING:
            workflow.logger.info("loan %s enters post-loan management", self._loan_id)
            await self._project()
        if self._stage is Stage.REPAYING:
            await self._service_until_boundary()
        if self._stage is Stage.CLOSED:
            await self._await_final_evaluation()
            return LoanOutcome(loan_id=self._loan_id, stage=self._stage, reasons=[])
        await self._drain_payments()
        workflow.continue_as_new(self._next_run())

    async def _service_until_boundary(self) -> None:
        """Wait for the next dated event or a payment; a due date or a band change ends the run."""
        while self._stage is Stage.REPAYING:
            at, event = self._next_event()
            fired = await self._wait_until(at)
            if not fired:
                await self._take_queued_payments()
                if self._payments_this_run >= MAX_PAYMENTS_PER_RUN or (
                    workflow.info().is_continue_as_new_suggested()
                ):
                    return
            elif event.startswith("reminder:"):
                await self._remind(event)
            elif event == "due":
                await self._fall_due()
                return
            else:
                await self._review_standing()
                return
            if self._book.settled:
                await self._close()

    def _next_event(self) -> tuple[datetime | None, str]:
        """The next dated event; none when only a payment can move the loan on."""
        events: list[tuple[datetime, str]] = []
        upcoming = self._book.next_installment
        if upcoming is not None:
            events += [
                (batch_time(r.send_on), self._reminder_key(r))
                for r in self._reminders_for(upcoming)
                if self._reminder_key(r) not in self._state.reminders_sent
            ]
            events.append((batch_time(upcoming.due_date), "due"))
        oldest = self._book.oldest_unpaid_due
        marks = band_changes(self._book, self._today(), self._policy)
        if oldest is not None and marks:
            events.append((batch_time(oldest + timedelta(days=marks[0])), "standing"))
        return min(events) if events else (None, "")

    async def _wait_until(self, at: datetime | None) -> bool:
        """True when ``at`` came; False when a payment arrived first."""
        try:
            await workflow.wait_condition(
                lambda: bool(self._payments),
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

    # ------------------------------------------------------------------ dated events

    def _reminders_for(self, installment: Installment) -> list[Reminder]:
        assert self._terms is not None
        return [
            r
            for r in reminders(
                self._book.schedule,
                self._terms.repayment_method,
                self._terms.term_months,
                self._policy,
            )
            if r.installment == installment.number
        ]

    @staticmethod
    def _reminder_key(reminder: Reminder) -> str:
        return f"reminder:{reminder.kind}:{reminder.installment}"

    async def _remind(self, key: str) -> None:
        """P-3: the interest reminder before each due date, the maturity notice before the last."""
        _, kind, number = key.split(":")
        line = self._book.schedule[int(number) - 1]
        self._state.reminders_sent.append(key)
        await self._send_sms(
            "interest_reminder" if kind == "interest" else "maturity_notice",
            key.replace(":", "/"),
            {
                "due_date": line.due_date,
                "payment": line.payment + self._book.arrears.total,
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
        self._book = accrue_to(self._book, line.due_date, self._rate(), self._policy)
        owed = dues(self._book, line)
        collected = await self._collect(owed, f"due-{line.number}", line.due_date)
        self._book = apply_payment(self._book, collected, line)
        self._state.reminders_sent = []
        if self._book.settled:
            await self._close()
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

    async def _review_standing(self) -> None:
        """F-3: reclassify as days past due cross a band; F-2 lowers the household's score."""
        view = self._view()
        for event in score_events_for_dpd(
            view.days_past_due, view.days_past_due, view.loan_class, set(self._state.score_events)
        ):
            await workflow.execute_activity_method(
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
            self._state.score_events.append(event)
        await self._project()

    # ------------------------------------------------------------------ money

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
        try:
            await workflow.execute_activity_method(
                LedgerActivities.post_repayment,
                PostRepaymentInput(
                    idempotency_key=self._key(step),
                    loan_id=self._loan_id,
                    settlement_account=self._app.applicant.settlement_account,
                    allocation=allocation,
                    value_date=value_date,
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
            )
        except ActivityError as failed:
            # Funds left the account between reading and posting: nothing was posted, and
            # what is unpaid stays owed until the next payment or event collects it.
            workflow.logger.error("loan %s: %s not collected: %s", self._loan_id, step, failed)
            return Allocation()
        return allocation

    async def _take_queued_payments(self) -> None:
        while self._payments:
            number, payment = self._payments.pop(0)
            await self._take_payment(number, payment)
            self._payments_done.add(number)
            self._payments_this_run += 1

    async def _drain_payments(self) -> None:
        """Before the run ends, every accepted payment is taken and its caller answered."""
        while True:
            await workflow.wait_condition(
                lambda: bool(self._payments) or workflow.all_handlers_finished()
            )
            if not self._payments:
                return
            await self._take_queued_payments()

    async def _take_payment(self, number: int, payment: RecordPayment) -> None:
        """The cash goes into the settlement account; arrears are collected from it at once,
        what is not yet due waits there for its due date (P-2, P-6)."""
        today = self._today()
        await workflow.execute_activity_method(
            LedgerActivities.post_deposit,
            PostDepositInput(
                idempotency_key=self._key(f"payment-{number}/deposit"),
                loan_id=self._loan_id,
                settlement_account=self._app.applicant.settlement_account,
                amount=payment.amount,
                value_date=today,
                memo=f"柜面还款 {payment.reference}".strip(),
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        if self._book.arrears.total > 0:
            self._book = accrue_to(self._book, today, self._rate(), self._policy)
            collected = await self._collect(dues(self._book), f"payment-{number}/arrears", today)
            self._book = apply_payment(self._book, collected)
        await self._send_sms(
            "payment_received",
            f"payment-{number}",
            {
                "amount": payment.amount,
                "arrears": self._book.arrears.total,
                "settlement_account_masked": self._account_masked(),
            },
        )
        if self._book.settled:
            await self._close()
        else:
            await self._project()

    # ------------------------------------------------------------------ closure

    async def _close(self) -> None:
        """P-7: repaid in full: guarantees released, settlement certificate, household free."""
        self._stage = Stage.CLOSED
        self._state.closed_on = self._today()
        await workflow.execute_activity_method(
            RegisterActivities.release_household,
            ReleaseHouseholdInput(
                loan_id=self._loan_id, household_id=self._app.applicant.household_id
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        await self._issue_certificate()
        await self._send_sms("loan_settled", "settled", {"closed_on": self._state.closed_on})
        await self._project()

    async def _issue_certificate(self) -> None:
        """P-7: 结清证明, printed for the borrower; guarantors and collateral are released."""
        repaid = self._book.repaid
        disbursed_at = self._inp.origination.disbursed_at
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
                        "disbursed_on": china_date(disbursed_at) if disbursed_at else None,
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

    async def _await_final_evaluation(self) -> None:
        """P-7: the officer's final evaluation note; then the archive closes and the run ends."""
        await workflow.wait_condition(lambda: self._state.final_evaluation is not None)
        await workflow.wait_condition(workflow.all_handlers_finished)

    # ------------------------------------------------------------------ human steps

    @workflow.update
    async def record_payment(self, inp: RecordPayment) -> LoanStatus:
        """A teller takes money for the loan at the counter (柜面还款)."""
        self._state.payments += 1
        number = self._state.payments
        self._payments.append((number, inp))
        await workflow.wait_condition(lambda: number in self._payments_done)
        return self.status()

    @record_payment.validator
    def _validate_record_payment(self, inp: RecordPayment) -> None:
        self._check_open("record_payment", "P-2")
        check_actor("P-2", "record_payment", inp.actor, Role.TELLER, self._branch())

    @workflow.update
    async def submit_final_evaluation(self, inp: SubmitFinalEvaluation) -> LoanStatus:
        """P-7: the last note on a repaid loan (终结评价); the archive closes with it."""
        self._state.final_evaluation = inp.evaluation
        self._closed_at = workflow.now()
        await self._project()
        return self.status()

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

    def _check_open(self, step: str, rule: str) -> None:
        if self._stage in ENDED_STAGES:
            raise refuse(
                [
                    refusal(
                        rule,
                        f"loan {self._loan_id} is {self._stage.value}; {step} is refused",
                        ViolationKind.CONFLICT,
                    )
                ]
            )

    # ------------------------------------------------------------------ views

    @workflow.query
    def status(self) -> LoanStatus:
        return self._inp.origination.model_copy(
            update={
                "stage": self._stage,
                "schedule": list(self._book.schedule),
                "open_tasks": self._open_tasks(),
                "servicing": self._view(),
                "closed_at": self._closed_at,
            }
        )

    def _view(self) -> ServicingView:
        today = self._today()
        standing = standing_on(
            self._book, today, self._state.judged_class, self._state.extended, self._policy
        )
        upcoming = self._book.next_installment
        arrears = self._book.arrears
        return ServicingView(
            today=today,
            days_past_due=standing.days_past_due,
            loan_class=standing.loan_class,
            bucket=standing.bucket,
            principal_outstanding=self._book.principal_outstanding,
            arrears=arrears.total,
            penalty_interest=arrears.penalty_interest,
            compound_interest=arrears.compound_interest,
            next_due_date=upcoming.due_date if upcoming else None,
            next_payment=upcoming.payment if upcoming else None,
            installments_overdue=self._book.installments_overdue,
            repaid=self._book.repaid,
            payments=self._state.payments,
            closed_on=self._state.closed_on,
            final_evaluation=self._state.final_evaluation,
        )

    def _open_tasks(self) -> list[TaskSpec]:
        if self._stage is Stage.CLOSED and self._state.final_evaluation is None:
            return [
                TaskSpec(
                    task_key=f"{self._loan_id}:final-evaluation",
                    kind="final_evaluation",
                    role=Role.LOAN_OFFICER,
                    branch_code=self._branch(),
                )
            ]
        return []

    # ------------------------------------------------------------------ effects

    async def _project(self) -> None:
        """The register row (class, bucket, balances) and the inbox; newer revisions win."""
        self._state.revision += 1
        status = self.status()
        workflow.upsert_search_attributes(loan_search_attributes(status))
        await workflow.execute_activity_method(
            RegisterActivities.project_loan,
            loan_projection(status, self._app, self._state.revision),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )

    async def _send_sms(self, template: str, step: str, context: dict[str, object]) -> None:
        """Tell the borrower; a notice that cannot be sent is logged, never stops the loan."""
        try:
            await workflow.execute_activity_method(
                NotificationActivities.send_sms,
                SendSmsInput(
                    idempotency_key=self._key(f"sms/{step}"),
                    loan_id=self._loan_id,
                    phone=self._app.applicant.phone,
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

    def _account_masked(self) -> str:
        return "****" + self._app.applicant.settlement_account[-4:]

    def _rate(self) -> Decimal:
        assert self._terms is not None
        return self._terms.annual_rate

    def _branch(self) -> str:
        return self._inp.origination.branch_code

    def _today(self) -> date:
        return china_date(workflow.now())

    def _key(self, step: str) -> str:
        """Idempotency key of an outside effect: the workflow id plus the step."""
        return f"{workflow_id_for(self._loan_id)}/{step}"
