"""Post-loan management on the time-skipping server: months pass in seconds.

Real workflow, rules and embedded adapters; the borrower's cash moves through the teller's
payments and, for the proceeds, a withdrawal the deposit system would record.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from temporalio.api.enums.v1 import EventType

from activities.notifications import SendSmsInput
from adapters.ledger import LOANS_RECEIVABLE, PENALTY_INTEREST, SqlLedger
from api.services.audit import loan_runs
from domain.calendar import CHINA, china_date
from domain.classification import ScoreEvent, bucket_for_dpd, class_for_dpd
from domain.collection import Rung
from domain.inspection import WarningSignal
from domain.loan import Bucket, LoanClass, Stage
from domain.money import CENT
from store.models import (
    BlacklistEntry,
    CreditEventRecord,
    HouseholdClaim,
    JournalEntry,
    LoanRecord,
    Notice,
    Notification,
    Task,
)
from tests.samples import actor, application
from tests.workflows.conftest import LoanHarness
from tests.workflows.steps import Handle, disbursed, refusal, rows, spend_proceeds
from workflows.messages import (
    LoanOutcome,
    LoanStatus,
    MarkWilfulDefault,
    RecordPayment,
    SubmitFinalEvaluation,
)
from workflows.servicing import LoanServicingWorkflow

D = Decimal


async def sleep_until(loans: LoanHarness, day: date, hour: int = 12) -> None:
    """Skip time to ``hour`` o'clock China time on ``day``."""
    target = datetime.combine(day, time(hour), CHINA)
    now = await loans.env.get_current_time()
    if target > now:
        await loans.env.sleep(target - now)


async def status_of(handle: Handle) -> LoanStatus:
    result: LoanStatus = await handle.query(LoanServicingWorkflow.status)
    return result


_receipts = itertools.count(1)


async def pay(handle: Handle, amount: Decimal) -> LoanStatus:
    """A teller's counter payment, each with a receipt of its own (P-2)."""
    receipt = f"HZ-{next(_receipts):04d}"
    result: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.record_payment,
        RecordPayment(actor=actor("teller1"), amount=amount, reference=receipt),
    )
    return result


async def sms_days(loans: LoanHarness, loan_id: str) -> dict[str, list[date]]:
    """The China date each SMS was sent on, by template, read from the loan's history."""
    converter = loans.client.data_converter
    out: dict[str, list[date]] = {}
    async for _, history in loan_runs(loans.client, loan_id):
        for event in history:
            if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                continue
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name != "send_sms":
                continue
            [sms] = await converter.decode(attrs.input.payloads, [SendSmsInput])
            day = china_date(event.event_time.ToDatetime(tzinfo=UTC))
            out.setdefault(sms.template, []).append(day)
    return out


async def test_installments_paid_on_time_run_to_closure(loans: LoanHarness) -> None:
    """E-14 allows 等额本息 only beyond 12 months, so the shortest such loan: 13 months."""
    today = await loans.today()
    app = application(
        today, repayment_method="equal_installment", purpose="durable_goods", term_months=13
    )
    handle, status = await disbursed(loans, app)
    loan_id = status.loan_id
    account = app.applicant.settlement_account
    spend_proceeds(loans.sessions, status, account)
    schedule = status.schedule
    assert len(schedule) == 13

    for line in schedule:
        # P-2: the borrower funds the account before the due date; the teller takes it.
        await sleep_until(loans, line.due_date - timedelta(days=2))
        paid = await pay(handle, line.payment)
        assert paid.servicing is not None and paid.servicing.arrears == 0
    await sleep_until(loans, schedule[-1].due_date, hour=18)

    status = await status_of(handle)
    assert status.stage is Stage.CLOSED
    assert status.servicing is not None
    assert status.servicing.closed_on == schedule[-1].due_date
    assert status.servicing.loan_class is LoanClass.NORMAL
    assert [t.kind for t in status.open_tasks] == ["final_evaluation"]  # P-7

    # P-2: one debit on each due date, valued that day; the loan's principal is back to zero.
    debits = rows(loans, JournalEntry, loan_id=loan_id, kind="repayment")
    assert [e.value_date for e in debits] == [line.due_date for line in schedule]
    ledger = SqlLedger(loans.sessions)
    assert ledger.balance(LOANS_RECEIVABLE, loan_id) == 0
    assert ledger.available(account) == 0
    assert ledger.balance(PENALTY_INTEREST, loan_id) == 0

    # P-3: an interest reminder five days before each due date; no maturity notice for
    # an installment loan; each debit confirmed the day it happened.
    days = await sms_days(loans, loan_id)
    assert days["interest_reminder"] == [line.due_date - timedelta(days=5) for line in schedule]
    assert "maturity_notice" not in days
    assert days["installment_collected"] == [line.due_date for line in schedule[:-1]]
    assert days["loan_settled"] == [schedule[-1].due_date]

    # P-7: certificate issued (numbered, kept, a print row for the clerk), household free to
    # borrow again, register closed.
    [certificate] = rows(loans, Notice, loan_id=loan_id)
    assert certificate.kind == "settlement_certificate" and not certificate.receipt_required
    assert certificate.number == f"CB01-{schedule[-1].due_date.year}-000001"
    assert certificate.issued_on == schedule[-1].due_date
    assert "<h1>结清证明</h1>" in certificate.html and "30,000.00元" in certificate.html
    printed = rows(loans, Notification, loan_id=loan_id, channel="print")
    assert [(n.template, n.body) for n in printed] == [
        ("settlement_certificate", f"请打印结清证明（编号{certificate.number}）送达张大山。")
    ]
    assert rows(loans, HouseholdClaim, household_id=app.applicant.household_id) == []
    register = rows(loans, LoanRecord, loan_id=loan_id)[0]
    assert (register.stage, register.loan_class, register.bucket) == ("closed", "normal", "current")
    assert register.principal_outstanding_fen == 0
    # K-2: a consumer installment loan paid on time needs no inspection; only the P-7 note.
    assert {t.kind for t in rows(loans, Task, loan_id=loan_id)} == {
        "investigate",
        "review",
        "approve",
        "sign_contract",
        "final_evaluation",
    }

    assert (
        await refusal(
            handle,
            LoanServicingWorkflow.record_payment,
            RecordPayment(actor=actor("teller1"), amount=D("10.00")),
        )
    )["rule"] == "P-2"
    done = await handle.execute_update(
        LoanServicingWorkflow.submit_final_evaluation,
        SubmitFinalEvaluation(actor=actor("officer1"), evaluation="按期还款，信用良好"),
    )
    assert done.closed_at is not None and done.open_tasks == []
    outcome: LoanOutcome = await handle.result()
    assert outcome.stage is Stage.CLOSED
    await loans.eventually(
        lambda: rows(loans, Task, loan_id=loan_id, kind="final_evaluation")[0].status == "done"
    )


async def test_missed_installments_climb_the_ladder_then_are_repaid_and_close(
    loans: LoanHarness,
) -> None:
    today = await loans.today()
    app = application(
        today, repayment_method="equal_installment", purpose="durable_goods", term_months=13
    )
    handle, status = await disbursed(loans, app)
    loan_id = status.loan_id
    spend_proceeds(loans.sessions, status, app.applicant.settlement_account)
    first, second, third = status.schedule[:3]
    rate = D("0.0720")
    calendar = loans.calendar()

    # Nothing in the account on the first due date: overdue from the next day (P-2, F-1, D-4).
    day1 = first.due_date + timedelta(days=1)
    await sleep_until(loans, day1)
    view = (await status_of(handle)).servicing
    assert view is not None
    assert (view.days_past_due, view.loan_class, view.bucket) == (
        1,
        LoanClass.SPECIAL_MENTION,
        Bucket.M1,
    )
    # P-5 by hand: one day on the first installment's principal and interest.
    assert view.penalty_interest == (first.principal * rate * D("1.5") / 360).quantize(CENT)
    assert view.compound_interest == (first.interest * rate * D("1.5") / 360).quantize(CENT)
    # D-1 first rung within 5 working days; K-4 special check at once; W-1 to the head.
    [rung1] = view.collection
    assert (rung1.rung, rung1.opened_on, rung1.due_on) == (
        Rung.REMINDER,
        day1,
        calendar.add_working_days(day1, 5),
    )
    assert [(i.kind, i.due_on) for i in view.inspections] == [("special", day1)]
    assert [w.signal for w in view.warnings] == [WarningSignal.OVERDUE_OR_ARREARS]

    def open_tasks() -> set[tuple[str, str]]:
        return {(t.kind, t.role) for t in rows(loans, Task, loan_id=loan_id, status="open")}

    await loans.eventually(
        lambda: (
            open_tasks()
            == {
                ("collect", "loan_officer"),
                ("inspection", "loan_officer"),
                ("warning", "branch_head"),
            }
        )
    )
    # D-2: the overdue notice to the borrower and the guarantor, each numbered and kept with
    # the round's key and a receipt slip (D-3), and printed by the clerk;
    # D-1: the borrower reminded and the guarantor told, by SMS.
    notices = rows(loans, Notice, loan_id=loan_id)
    assert sorted(n.addressee for n in notices) == sorted(["张大山", "李四"])
    assert {(n.kind, n.round_key, n.issued_on) for n in notices} == {
        ("overdue_notice", view.notices[0].notice_key, day1)
    }
    assert all(n.receipt_required and 'class="receipt"' in n.html for n in notices)
    printed = rows(loans, Notification, loan_id=loan_id, channel="print")
    assert sorted(n.recipient_masked for n in printed) == sorted(["张大山", "李四"])
    assert sorted(n.body for n in printed) == sorted(
        f"请打印逾期贷款催收通知书（编号{n.number}）送达{n.addressee}，回执签收后交回登记。"
        for n in notices
    )
    texts = {n.template: n for n in rows(loans, Notification, loan_id=loan_id, channel="sms")}
    assert texts["guarantor_notice"].recipient_masked == "139****4321"
    assert "overdue_reminder" in texts

    # Second and third installments missed: the ladder climbs on their due dates.
    await sleep_until(loans, third.due_date + timedelta(days=1))
    view = (await status_of(handle)).servicing
    assert view is not None
    # The worse of installments (1, 2, 3+) and days (<= 30, 31-60, > 60) sets the rung.
    on_site = min(third.due_date, first.due_date + timedelta(days=61))
    assert [(s.rung, s.opened_on) for s in view.collection] == [
        (Rung.REMINDER, day1),
        (Rung.VISIT_AND_NOTICE, min(second.due_date, first.due_date + timedelta(days=31))),
        (Rung.ON_SITE, on_site),
    ]
    assert view.collection[2].due_on == calendar.add_working_days(on_site, 10)
    # The day after the third due date is 59 to 62 days on, by the months' lengths: the
    # bucket (D-4) and class (F-1) follow from the days, whatever month the test starts in.
    dpd = (view.today - first.due_date).days
    assert view.days_past_due == dpd
    assert (view.bucket, view.loan_class, view.installments_overdue) == (
        bucket_for_dpd(dpd),
        class_for_dpd(dpd, loans.policy.classification),
        3,
    )
    assert view.loan_class is LoanClass.SPECIAL_MENTION  # 1-90 days (F-1)
    # F-2: -15 once the arrears are 30 days old, in the register later applications read.
    events = rows(loans, CreditEventRecord, loan_id=loan_id)
    assert [(e.event, e.score_before, e.score_after) for e in events] == [
        (ScoreEvent.OVERDUE_30_TO_90.value, 85, 70)
    ]
    assert view.score == 70

    # D-5: the head finds the borrower a wilful defaulter; an officer may not.
    assert (
        await refusal(
            handle,
            LoanServicingWorkflow.mark_wilful_default,
            MarkWilfulDefault(actor=actor("officer1"), reason="有能力还款而拒不还款"),
        )
    )["rule"] == "D-5"
    marked: LoanStatus = await handle.execute_update(
        LoanServicingWorkflow.mark_wilful_default,
        MarkWilfulDefault(actor=actor("head1"), reason="有能力还款而拒不还款，转移财产"),
    )
    assert rows(loans, BlacklistEntry, household_id=app.applicant.household_id) != []

    # Everything overdue paid, to the cent (as accrued to today): current again, the
    # ladder's tasks closed.
    assert marked.servicing is not None and marked.servicing.blacklisted
    status = await pay(handle, marked.servicing.arrears)
    assert status.servicing is not None
    assert (status.servicing.arrears, status.servicing.bucket) == (D("0.00"), Bucket.CURRENT)
    assert status.servicing.overdue_since is None
    assert all(s.done_on is not None for s in status.servicing.collection)
    ledger = SqlLedger(loans.sessions)
    penalties = ledger.balance(PENALTY_INTEREST, loan_id)
    assert -penalties == status.servicing.repaid.penalty > 0  # collected into income
    # The ledger reconciles with the workflow's book: what 1301 still holds is what the
    # borrower still owes in principal, and every entry balances.
    assert ledger.balance(LOANS_RECEIVABLE, loan_id) == status.servicing.principal_outstanding
    assert sum(ledger.account_balances().values()) == 0

    # The rest of the schedule paid from the account: the loan closes at maturity (P-7).
    rest = sum((line.payment for line in status.schedule[3:]), D("0"))
    await pay(handle, rest)
    await sleep_until(loans, status.schedule[-1].due_date, hour=18)
    closed = await status_of(handle)
    assert closed.stage is Stage.CLOSED
    assert SqlLedger(loans.sessions).balance(LOANS_RECEIVABLE, loan_id) == 0

    # D-5 / E-6: the blacklisted household cannot borrow again, though its loan is repaid.
    again = await loans.apply(
        application(await loans.today(), household_id=app.applicant.household_id)
    )
    refused = await loans.wait_for_stage(again, Stage.REFUSED)
    assert [r.rule for r in refused.outcome_reasons] == ["E-6"]


async def test_temporal_holds_no_id_or_phone_number_in_clear(loans: LoanHarness) -> None:
    """H-3: every payload of the loan's runs is encrypted before it reaches the server."""
    today = await loans.today()
    app = application(today)
    _, status = await disbursed(loans, app)
    secrets = [app.applicant.id_number, app.applicant.phone, app.guarantors[0].id_number]
    raw = [history async for _, history in loan_runs(loans.client, status.loan_id)]
    stored = "".join(
        event.SerializeToString().decode("latin-1") for history in raw for event in history
    )
    assert stored and all(secret not in stored for secret in secrets)
    # The same history, decoded with the deployment's key, does hold them: the check is real.
    started = raw[0][0].workflow_execution_started_event_attributes
    [start] = await loans.client.data_converter.decode(started.input.payloads, [dict[str, Any]])
    assert start["application"]["applicant"]["id_number"] == app.applicant.id_number
