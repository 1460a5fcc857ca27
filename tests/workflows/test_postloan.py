"""Post-loan checks, signals, classification, notices and bounded history, on the
time-skipping server (K-1..K-5, W-1/W-2, F-1, P-3, continue-as-new)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from temporalio.api.enums.v1 import EventType

from adapters.ledger import LOAN_LOSS_RESERVE, LOANS_RECEIVABLE, WRITTEN_OFF_MEMO, SqlLedger
from api.services.audit import loan_runs
from domain.inspection import InspectionFindings, WarningMeasure, WarningSignal
from domain.loan import LoanClass, Stage
from domain.schedule import add_months
from store.models import JournalEntry, Task
from tests.samples import actor, application, approve, forward, signing
from tests.workflows.conftest import LoanHarness
from tests.workflows.steps import disbursed, refusal, rows, spend_proceeds
from tests.workflows.test_servicing import pay, sleep_until, sms_days, status_of
from workflows.messages import (
    ClassifyLoan,
    DecideLoan,
    DecidePrepayment,
    DecideWarning,
    DecideWriteOff,
    LoanStatus,
    ProposeWriteOff,
    RaiseWarning,
    RecordCollectionAction,
    RecordNoticeReceipt,
    ReportInspection,
    RequestExtension,
    RequestPrepayment,
    SignContract,
    SubmitReview,
)
from workflows.servicing import RUN_EVENT_BUDGET, LoanServicingWorkflow

D = Decimal
# Documented in README.md (post-loan management): a run ends after the first dated event
# that finds its history at RUN_EVENT_BUDGET events; one dated event writes at most
# EVENTS_PER_EVENT_BOUND, and each human step at most EVENTS_PER_STEP_BOUND (a run ends
# after MAX_STEPS_PER_RUN steps).
EVENTS_PER_EVENT_BOUND = 60
EVENTS_PER_STEP_BOUND = 25


def findings(**overrides: object) -> InspectionFindings:
    data: dict[str, object] = {
        "purpose_kept": True,
        "business_normal": True,
        "household_income": "养殖收入稳定",
        "health": "良好",
        "marriage": "已婚",
        "contact_details_current": True,
    }
    return InspectionFindings.model_validate({**data, **overrides})


async def test_k1_first_check_then_k2_routine_checks_every_three_months(
    loans: LoanHarness,
) -> None:
    """A livestock loan is a business loan: first check within 15 days of payout (K-1),
    then every 3 months (K-2), the task opening 10 days before (the institution's lead)."""
    today = await loans.today()
    handle, status = await disbursed(loans, application(today))
    loan_id = status.loan_id
    assert status.servicing is not None
    [first] = status.servicing.inspections
    assert (first.kind, first.due_on) == ("first", today + timedelta(days=15))

    # Only the assigned role may report, and only an open task.
    report = ReportInspection(actor=actor("officer1"), task_key=first.task_key, findings=findings())
    wrong = await refusal(
        handle,
        LoanServicingWorkflow.report_inspection,
        report.model_copy(update={"actor": actor("reviewer1")}),
    )
    assert (wrong["rule"], wrong["kind"]) == ("K-5", "forbidden")
    closed = await refusal(
        handle,
        LoanServicingWorkflow.report_inspection,
        report.model_copy(update={"task_key": f"{loan_id}:inspection:9"}),
    )
    assert (closed["rule"], closed["kind"]) == ("K-5", "conflict")

    checked_on = today + timedelta(days=7)
    await sleep_until(loans, checked_on)
    done: LoanStatus = await handle.execute_update(LoanServicingWorkflow.report_inspection, report)
    assert done.servicing is not None
    assert done.servicing.inspections[0].done_on == checked_on
    assert done.open_tasks == []

    # K-2: three months after the check (score 85 = AA: the K-3 cap of 180 days is longer).
    routine_due = add_months(checked_on, 3)
    await sleep_until(loans, routine_due - timedelta(days=11))
    assert [t.kind for t in (await status_of(handle)).open_tasks] == []
    await sleep_until(loans, routine_due - timedelta(days=10))
    latest = await status_of(handle)
    assert [(t.kind, t.due_date) for t in latest.open_tasks] == [("inspection", routine_due)]
    await loans.eventually(
        lambda: (
            [t.kind for t in rows(loans, Task, loan_id=loan_id, status="open")] == ["inspection"]
        )
    )


async def test_k3_a_low_grade_shortens_the_interval_and_micro_credit_is_checked_by_village(
    loans: LoanHarness,
) -> None:
    """K-2: farm micro credit (a credit loan for livestock) every 6 months, by village;
    K-3: an A borrower at most every 90 days, so the village check comes at 90 days."""
    today = await loans.today()
    rating = {"score": 75, "rated_on": today.isoformat()}
    app = application(
        today, guarantee_type="credit", guarantors=[], credit_rating=rating, amount="5000"
    )
    handle, status = await disbursed(loans, app)
    assert status.servicing is not None
    assert status.servicing.inspections == []  # K-1: micro credit has no first check
    due = today + timedelta(days=90)
    await sleep_until(loans, due - timedelta(days=10))
    latest = await status_of(handle)
    assert [(t.kind, t.due_date) for t in latest.open_tasks] == [("village_inspection", due)]


async def test_k5_misuse_of_funds_raises_signals_and_calls_the_loan_in(
    loans: LoanHarness,
) -> None:
    today = await loans.today()
    app = application(today)
    handle, status = await disbursed(loans, app)
    loan_id = status.loan_id
    assert status.servicing is not None and status.approved is not None
    [first] = status.servicing.inspections
    checked_on = today + timedelta(days=10)
    await sleep_until(loans, checked_on)
    result: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.report_inspection,
        ReportInspection(
            actor=actor("officer1"),
            task_key=first.task_key,
            findings=findings(purpose_kept=False, notes="贷款用于购买小汽车"),
        ),
    )
    view = result.servicing
    assert view is not None
    # W-1 misuse → the head's task; K-5 → the whole balance due at once (提前收回), and
    # the proceeds still in the account are collected against it.
    # F-2 -15 takes the borrower from AA to A: a downgrade is a signal of its own (W-1).
    assert [w.signal for w in view.warnings] == [
        WarningSignal.MISUSE_OF_FUNDS,
        WarningSignal.GRADE_DOWNGRADE,
    ]
    assert view.called_in_on == checked_on
    assert view.next_due_date is None
    # P-1: interest to the day it was called in, paid first from the proceeds (P-6); the
    # proceeds then cover all but that much principal, which is overdue from today.
    interest = (status.approved.amount * D("0.0720") * 10 / 360).quantize(D("0.01"))
    assert view.repaid.interest == interest
    assert view.arrears == interest and view.installments_overdue == 1
    assert [e.kind for e in rows(loans, JournalEntry, loan_id=loan_id)] == [
        "disbursement",
        "repayment",
    ]
    closed = await pay(handle, interest)
    assert closed.stage is Stage.CLOSED
    assert view.score == 85 - 15  # F-2: purpose changed without consent


async def test_w2_an_unanswered_signal_escalates_to_credit_management(loans: LoanHarness) -> None:
    today = await loans.today()
    handle, _ = await disbursed(loans, application(today))
    raised: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.raise_warning,
        RaiseWarning(
            actor=actor("officer1"),
            signal=WarningSignal.MOVED_OR_OUT_OF_CONTACT,
            note="外出务工失联",
        ),
    )
    assert raised.servicing is not None
    [warning] = raised.servicing.warnings
    calendar = loans.calendar()
    assert warning.respond_by == calendar.add_working_days(today, 5)
    assert warning.escalate_by == calendar.add_working_days(today, 10)
    head_task = next(t for t in raised.open_tasks if t.kind == "warning")
    assert (head_task.role, head_task.due_date) == ("branch_head", warning.respond_by)

    await sleep_until(loans, warning.escalate_by + timedelta(days=1), hour=10)
    escalated = await status_of(handle)
    [task] = [t for t in escalated.open_tasks if t.kind.startswith("warning")]
    assert (task.kind, task.role) == ("warning_escalated", "post_loan_manager")
    # Now the head may no longer decide; credit management does.
    decision = DecideWarning(
        actor=actor("head1"),
        task_key=task.task_key,
        measure=WarningMeasure.ADD_GUARANTEE_OR_COLLATERAL,
        note="追加保证人",
    )
    assert (await refusal(handle, LoanServicingWorkflow.decide_warning, decision))["rule"] == "W-2"
    decided: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.decide_warning,
        decision.model_copy(update={"actor": actor("manager1")}),
    )
    assert decided.servicing is not None
    assert decided.servicing.warnings[0].measure is WarningMeasure.ADD_GUARANTEE_OR_COLLATERAL
    assert not [t for t in decided.open_tasks if t.kind.startswith("warning")]


async def test_f1_a_reviewer_may_classify_lower_never_higher(loans: LoanHarness) -> None:
    today = await loans.today()
    app = application(today)
    handle, status = await disbursed(loans, app)
    spend_proceeds(loans.sessions, status, app.applicant.settlement_account)
    step = ClassifyLoan(
        actor=actor("reviewer1"), loan_class=LoanClass.SUBSTANDARD, reason="经营亏损"
    )
    by_officer = step.model_copy(update={"actor": actor("officer1")})
    officer = await refusal(handle, LoanServicingWorkflow.classify_loan, by_officer)
    assert (officer["rule"], officer["kind"]) == ("F-1", "forbidden")
    lowered: LoanStatus = await handle.execute_update(LoanServicingWorkflow.classify_loan, step)
    assert lowered.servicing is not None
    assert lowered.servicing.loan_class is LoanClass.SUBSTANDARD
    # F-2: 次级 by judgement lowers the score by 50 (the "over 90 days or 次级" event).
    assert lowered.servicing.score == 85 - 50
    # K-3: 次级 is checked every month: once the first check is reported, the next is due
    # 30 days later (its task opening 10 days before), not 3 months.
    [first] = lowered.servicing.inspections
    await handle.execute_update(
        LoanServicingWorkflow.report_inspection,
        ReportInspection(actor=actor("officer1"), task_key=first.task_key, findings=findings()),
    )
    await sleep_until(loans, today + timedelta(days=20))
    monthly = [t for t in (await status_of(handle)).open_tasks if t.kind == "inspection"]
    assert [t.due_date for t in monthly] == [today + timedelta(days=30)]

    # 91 days past due: the floor itself is 次级 and a better class is refused.
    await sleep_until(loans, status.schedule[0].due_date + timedelta(days=91))
    upward = step.model_copy(update={"loan_class": LoanClass.SPECIAL_MENTION})
    refused = await refusal(handle, LoanServicingWorkflow.classify_loan, upward)
    assert (refused["rule"], refused["kind"]) == ("F-1", "invalid")
    doubtful: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.classify_loan,
        step.model_copy(update={"loan_class": LoanClass.DOUBTFUL}),
    )
    assert doubtful.servicing is not None
    assert doubtful.servicing.loan_class is LoanClass.DOUBTFUL
    # F-2 once each: -50 (次级), -15 (30 days), -60 (可疑): never below 0.
    assert doubtful.servicing.score == 0


async def test_p3_interest_reminders_and_the_maturity_notice_ten_days_ahead(
    loans: LoanHarness,
) -> None:
    """Interest monthly, 12 months: an interest reminder 5 days before each interest date,
    the maturity notice (贷款到期通知书) 10 days before maturity (term ≤ 12 months)."""
    today = await loans.today()
    app = application(today, purpose="durable_goods")
    handle, status = await disbursed(loans, app)
    schedule = status.schedule
    # The proceeds stay in the account; the interest is paid in at the counter up front.
    await pay(handle, sum((line.interest for line in schedule), D("0")))
    await sleep_until(loans, schedule[-1].due_date, hour=18)
    assert (await status_of(handle)).stage is Stage.CLOSED
    days = await sms_days(loans, status.loan_id)
    assert days["interest_reminder"] == [line.due_date - timedelta(days=5) for line in schedule]
    assert days["maturity_notice"] == [schedule[-1].due_date - timedelta(days=10)]


async def test_lump_sum_maturity_notice_and_one_collection_action(loans: LoanHarness) -> None:
    today = await loans.today()
    app = application(today, purpose="durable_goods", repayment_method="lump_sum", term_months=6)
    handle, status = await disbursed(loans, app)
    spend_proceeds(loans.sessions, status, app.applicant.settlement_account)
    [line] = status.schedule
    await sleep_until(loans, line.due_date + timedelta(days=1))
    days = await sms_days(loans, status.loan_id)
    assert days["maturity_notice"] == [line.due_date - timedelta(days=10)]
    assert days["interest_reminder"] == [line.due_date - timedelta(days=5)]
    # D-1: lump sum, 1 day late: the first rung; the officer records the call.
    view = (await status_of(handle)).servicing
    assert view is not None
    [rung] = view.collection
    done: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.record_collection_action,
        RecordCollectionAction(
            actor=actor("officer1"),
            task_key=rung.task_key,
            actions=["电话提醒借款人", "告知保证人"],
            outcome="借款人承诺三日内还款",
        ),
    )
    assert done.servicing is not None
    assert done.servicing.collection[0].done_by == "officer1"
    again = await refusal(
        handle,
        LoanServicingWorkflow.record_collection_action,
        RecordCollectionAction(
            actor=actor("officer1"), task_key=rung.task_key, actions=["再次"], outcome="重复提交"
        ),
    )
    assert again["rule"] == "D-1"
    await pay(handle, done.servicing.arrears)
    assert (await status_of(handle)).stage is Stage.CLOSED


async def test_a_36_month_loan_keeps_every_run_short(loans: LoanHarness) -> None:
    """Continue-as-new after every dated event: no run grows with the loan's length."""
    today = await loans.today()
    app = application(
        today, purpose="durable_goods", repayment_method="equal_installment", term_months=36
    )
    handle, status = await disbursed(loans, app)
    await pay(handle, sum((line.interest for line in status.schedule), D("0")))
    await sleep_until(loans, status.schedule[-1].due_date, hour=18)
    assert (await status_of(handle)).stage is Stage.CLOSED
    sizes = [len(events) async for _, events in loan_runs(loans.client, status.loan_id)]
    first, *later = sizes[1:]
    bound = RUN_EVENT_BUDGET + EVENTS_PER_EVENT_BOUND
    assert first <= bound + EVENTS_PER_STEP_BOUND, sizes  # the payment was in the first run
    assert later and max(later) <= bound, sizes
    # 36 due dates, yet a handful of runs: the history is cut by size, not by the calendar.
    assert len(sizes) <= 1 + sum(sizes) // RUN_EVENT_BUDGET + 1, sizes
    kinds = [events[-1].event_type async for _, events in loan_runs(loans.client, status.loan_id)]
    assert kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW) == len(sizes) - 1


async def test_p4_partial_then_full_prepayment_with_the_heads_consent(loans: LoanHarness) -> None:
    today = await loans.today()
    app = application(today)
    handle, status = await disbursed(loans, app)
    spend_proceeds(loans.sessions, status, app.applicant.settlement_account)
    first = status.schedule[0]
    await pay(handle, D("10000.00"))  # the borrower brings the money to the counter

    ask = RequestPrepayment(actor=actor("officer1"), amount=D("10000.00"))
    by_teller = await refusal(
        handle,
        LoanServicingWorkflow.request_prepayment,
        ask.model_copy(update={"actor": actor("teller1")}),
    )
    assert (by_teller["rule"], by_teller["kind"]) == ("P-4", "forbidden")
    asked: LoanStatus = await handle.execute_update(LoanServicingWorkflow.request_prepayment, ask)
    consent = next(t for t in asked.open_tasks if t.kind == "consent_prepayment")
    assert consent.role == "branch_head"
    twice = await refusal(handle, LoanServicingWorkflow.request_prepayment, ask)
    assert twice["rule"] == "P-4" and "awaits" in twice["refusals"][0]["message"]

    prepaid: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.decide_prepayment,
        DecidePrepayment(actor=actor("head1"), consent=True, note="同意提前还款"),
    )
    view = prepaid.servicing
    assert view is not None
    [record] = view.prepayments
    assert record.outcome == "partial" and record.fee == 0
    # P-1: interest on 30 000 since payout, then principal with the rest (P-4).
    days = (view.today - today).days
    interest = (D("30000") * D("0.0720") * days / 360).quantize(D("0.01"))
    assert (record.interest, record.principal_prepaid) == (interest, D("10000.00") - interest)
    assert view.principal_outstanding == D("30000.00") - record.principal_prepaid
    # The schedule is recomputed by the rules: same dates, interest on what is left.
    assert [line.due_date for line in prepaid.schedule] == [
        line.due_date for line in status.schedule
    ]
    assert prepaid.schedule[0].interest < first.interest
    assert sum((line.principal for line in prepaid.schedule), D("0")) == view.principal_outstanding

    # The rest in full, the next day, once the money is in the account: the loan closes.
    await sleep_until(loans, view.today + timedelta(days=1))
    owed = view.principal_outstanding + D("100.00")
    await pay(handle, owed)
    await handle.execute_update(
        LoanServicingWorkflow.request_prepayment,
        RequestPrepayment(actor=actor("officer1"), amount=owed),
    )
    closed: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.decide_prepayment,
        DecidePrepayment(actor=actor("head1"), consent=True, note="结清"),
    )
    assert closed.stage is Stage.CLOSED
    assert closed.servicing is not None and closed.servicing.prepayments[-1].outcome == "full"
    assert SqlLedger(loans.sessions).balance(LOANS_RECEIVABLE, status.loan_id) == 0


async def test_z1_a_loss_loan_written_off_and_later_recoveries_still_post(
    loans: LoanHarness,
) -> None:
    today = await loans.today()
    app = application(today)
    handle, status = await disbursed(loans, app)
    loan_id = status.loan_id
    spend_proceeds(loans.sessions, status, app.applicant.settlement_account)
    proposal = ProposeWriteOff(actor=actor("manager1"), reason="借款人死亡，无财产可供执行")
    not_loss = await refusal(handle, LoanServicingWorkflow.propose_write_off, proposal)
    assert not_loss["rule"] == "Z-1" and "正常" in not_loss["refusals"][0]["message"]

    # F-1: a reviewer's judgement puts it at 损失; then it may be proposed (Z-1).
    await sleep_until(loans, today + timedelta(days=20))
    await handle.execute_update(
        LoanServicingWorkflow.classify_loan,
        ClassifyLoan(actor=actor("reviewer1"), loan_class=LoanClass.LOSS, reason="借款人死亡"),
    )
    proposed: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.propose_write_off, proposal
    )
    task = next(t for t in proposed.open_tasks if t.kind == "approve_write_off")
    assert (task.role, task.branch_code) == ("approver", "PF01")  # the credit-management tier
    decision = DecideWriteOff(actor=actor("approver1"), approve=True, note="同意核销")
    county = await refusal(handle, LoanServicingWorkflow.decide_write_off, decision)
    assert (county["rule"], county["kind"]) == ("Z-1", "forbidden")
    written: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.decide_write_off,
        decision.model_copy(update={"actor": actor("pref_approver")}),
    )
    assert written.stage is Stage.WRITTEN_OFF
    assert written.servicing is not None and written.servicing.write_off is not None
    assert written.servicing.write_off.principal == D("30000.00")
    ledger = SqlLedger(loans.sessions)
    assert ledger.balance(LOANS_RECEIVABLE, loan_id) == 0  # off the balance sheet
    assert ledger.balance(WRITTEN_OFF_MEMO, loan_id) == D("30000.00")  # 账销案存

    # A recovery: interest first (P-6), the principal part against the loss reserve.
    recovered = await pay(handle, D("5000.00"))
    assert recovered.stage is Stage.WRITTEN_OFF
    assert recovered.servicing is not None and recovered.servicing.write_off is not None
    assert recovered.servicing.write_off.recovered == D("5000.00")
    interest = recovered.servicing.repaid.interest
    assert interest == D("120.00")  # P-1: 30 000 × 0.072 × 20 / 360, made due at write-off
    assert ledger.balance(WRITTEN_OFF_MEMO, loan_id) == D("30000.00") - (D("5000.00") - interest)
    # The reserve used by the write-off (debit) is replenished by what comes back.
    assert ledger.balance(LOAN_LOSS_RESERVE, loan_id) == D("30000.00") - (D("5000.00") - interest)
    # The written-off loan takes no more checks or prepayments; the limitation period
    # is still protected by re-notices (D-3).
    refused = await refusal(
        handle,
        LoanServicingWorkflow.request_prepayment,
        RequestPrepayment(actor=actor("officer1"), amount=D("100.00")),
    )
    assert refused["rule"] == "P-4"


async def test_x_extension_on_the_original_route_new_schedule_and_class_capped(
    loans: LoanHarness,
) -> None:
    """X-1..X-7 on a 12-month interest-monthly loan; the request goes the original's route
    (X-4: review, then the county approver) through the same steps as origination."""
    today = await loans.today()
    app = application(today)
    handle, status = await disbursed(loans, app)
    maturity = status.schedule[-1].due_date
    await pay(handle, sum((line.interest for line in status.schedule), D("0")))
    await sleep_until(loans, maturity - timedelta(days=20))
    ask = RequestExtension(
        actor=actor("officer1"), months=6, reason="生猪价格下跌，延后出栏", guarantor_consent=True
    )

    async def refused_rules(step: RequestExtension) -> set[str]:
        found = await refusal(handle, LoanServicingWorkflow.request_extension, step)
        return {r["rule"] for r in found["refusals"]}

    assert await refused_rules(ask.model_copy(update={"months": 13})) == {"X-3"}  # ≤ term
    assert await refused_rules(ask.model_copy(update={"guarantor_consent": False})) == {"X-1"}
    # a 次级 loan may not be extended (a reviewer's judgement, later eased).
    await handle.execute_update(
        LoanServicingWorkflow.classify_loan,
        ClassifyLoan(actor=actor("reviewer1"), loan_class=LoanClass.SUBSTANDARD, reason="待核查"),
    )
    assert await refused_rules(ask) == {"X-2"}
    await handle.execute_update(
        LoanServicingWorkflow.classify_loan,
        ClassifyLoan(actor=actor("reviewer1"), loan_class=LoanClass.NORMAL, reason="核查无异常"),
    )

    asked: LoanStatus = await handle.execute_update(LoanServicingWorkflow.request_extension, ask)
    assert [(t.kind, t.role) for t in asked.open_tasks if t.kind == "review"] == [
        ("review", "reviewer")
    ]
    await handle.execute_update(
        LoanServicingWorkflow.review_loan, SubmitReview(actor=actor("reviewer1"), review=forward())
    )
    approval = DecideLoan(
        actor=actor("approver2"),  # a 20 000 limit: below the original 30 000
        decision=approve("30000", term_months=6),
    )
    limit = await refusal(handle, LoanServicingWorkflow.decide_loan, approval)
    assert limit["rule"] == "A-2" and limit["kind"] == "forbidden"
    approved: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.decide_loan,
        approval.model_copy(update={"actor": actor("approver1")}),
    )
    assert approved.servicing is not None
    [extension] = approved.servicing.extensions
    assert extension.outcome == "approved"
    assert extension.new_maturity == add_months(maturity, 6)
    assert [t.kind for t in approved.open_tasks if t.kind == "sign_contract"] == ["sign_contract"]

    signed: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.sign_contract,
        SignContract(actor=actor("officer1"), signing=signing(await loans.today())),
    )
    assert signed.servicing is not None
    assert signed.servicing.extensions[0].outcome == "signed"
    assert signed.servicing.loan_class is LoanClass.SPECIAL_MENTION  # at best 关注
    assert signed.schedule[-1].due_date == add_months(maturity, 6)
    assert [line.number for line in signed.schedule] == list(range(1, len(signed.schedule) + 1))
    assert signed.schedule[-1].principal == D("30000.00")
    # once only.
    assert "X-7" in await refused_rules(ask)
    # and never within 15 days of maturity.
    await sleep_until(loans, signed.schedule[-1].due_date - timedelta(days=10))
    assert {"X-1", "X-7"} <= await refused_rules(ask)

    # The extended loan runs to its new maturity; 18 months in all: the maturity notice
    # comes 30 days ahead (P-3, term > 12 months).
    rest = sum((line.interest for line in signed.schedule[11:]), D("0"))
    await pay(handle, rest)
    await sleep_until(loans, signed.schedule[-1].due_date, hour=18)
    assert (await status_of(handle)).stage is Stage.CLOSED
    days = await sms_days(loans, status.loan_id)
    assert days["maturity_notice"][-1] == signed.schedule[-1].due_date - timedelta(days=30)


async def test_d3_no_receipt_opens_a_follow_up_and_notices_are_renewed_every_six_months(
    loans: LoanHarness,
) -> None:
    """D-2 at once, D-3: a notice whose receipt is not back within 30 days opens a task (a
    visit, notarised delivery, payment order or lawsuit); while the loan stays overdue a
    new notice goes out at least every 6 months, so the limitation period never runs out."""
    today = await loans.today()
    app = application(today, purpose="durable_goods", repayment_method="lump_sum", term_months=6)
    handle, status = await disbursed(loans, app)
    spend_proceeds(loans.sessions, status, app.applicant.settlement_account)
    [line] = status.schedule
    overdue_on = line.due_date + timedelta(days=1)
    await sleep_until(loans, overdue_on + timedelta(days=31))
    view = (await status_of(handle)).servicing
    assert view is not None
    [notice] = view.notices
    assert notice.sent_on == overdue_on and notice.recipients == ["张大山", "李四"]
    follow_up = [t for t in (await status_of(handle)).open_tasks if t.kind == "notice_follow_up"]
    assert [t.task_key for t in follow_up] == [f"{notice.notice_key}:follow-up"]
    # A receipt dated in the future is refused; the officer records the follow-up instead.
    refused = await refusal(
        handle,
        LoanServicingWorkflow.record_notice_receipt,
        RecordNoticeReceipt(
            actor=actor("officer1"),
            notice_key=notice.notice_key,
            received_on=overdue_on + timedelta(days=400),
        ),
    )
    assert (refused["rule"], refused["kind"]) == ("D-3", "invalid")
    done: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.record_collection_action,
        RecordCollectionAction(
            actor=actor("officer1"),
            task_key=follow_up[0].task_key,
            actions=["公证送达"],
            outcome="已公证送达催收通知书",
        ),
    )
    assert done.servicing is not None and "公证送达" in done.servicing.notices[0].follow_up

    await sleep_until(loans, add_months(overdue_on, 6) + timedelta(days=1))
    renewed = (await status_of(handle)).servicing
    assert renewed is not None
    assert [n.sent_on for n in renewed.notices] == [overdue_on, add_months(overdue_on, 6)]
    # The second notice comes back signed in time: no follow-up for it.
    second = renewed.notices[1]
    received: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.record_notice_receipt,
        RecordNoticeReceipt(
            actor=actor("officer1"), notice_key=second.notice_key, received_on=second.sent_on
        ),
    )
    assert received.servicing is not None
    assert received.servicing.notices[1].receipt_on == second.sent_on
    await sleep_until(loans, second.sent_on + timedelta(days=32))
    assert not [t for t in (await status_of(handle)).open_tasks if t.kind == "notice_follow_up"]


async def test_w2_calling_the_loan_in_makes_the_whole_balance_due(loans: LoanHarness) -> None:
    today = await loans.today()
    app = application(today)
    handle, status = await disbursed(loans, app)
    spend_proceeds(loans.sessions, status, app.applicant.settlement_account)
    raised: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.raise_warning,
        RaiseWarning(
            actor=actor("officer1"), signal=WarningSignal.LAWSUIT, note="涉诉，财产被查封"
        ),
    )
    [task] = [t for t in raised.open_tasks if t.kind == "warning"]
    await sleep_until(loans, today + timedelta(days=3))
    called: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.decide_warning,
        DecideWarning(
            actor=actor("head1"),
            task_key=task.task_key,
            measure=WarningMeasure.CALL_IN_EARLY,
            note="提前收回",
        ),
    )
    view = called.servicing
    assert view is not None
    assert view.called_in_on == today + timedelta(days=3) and view.next_due_date is None
    # P-1: three days of interest on 30 000 (18.00) and the whole principal, due today.
    assert view.arrears == D("30000.00") + D("18.00")
    assert view.installments_overdue == 1
