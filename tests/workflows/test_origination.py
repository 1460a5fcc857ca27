"""Origination on the time-skipping server: application to disbursement, real rules and adapters."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ledger import LedgerActivities, PostDisbursementInput
from adapters.ledger import LOANS_RECEIVABLE, PostingResult, SqlLedger
from domain.approval import decision_deadline, signing_deadline
from domain.loan import Material, Stage
from domain.schedule import schedule_totals
from store.models import (
    HouseholdClaim,
    JournalEntry,
    LoanRecord,
    Notification,
    ScheduledInstallment,
    Task,
)
from tests.samples import actor, application, approve, forward, report, signing
from tests.workflows.conftest import LoanHarness
from tests.workflows.steps import investigate, refusal, rows, through_approval
from workflows.loan import LoanWorkflow
from workflows.messages import (
    ConfirmAsBranchHead,
    DecideLoan,
    LoanOutcome,
    SignContract,
    SubmitInvestigation,
    SubmitReview,
    SupplyMaterials,
    WithdrawApplication,
)


async def test_happy_path_to_disbursement(loans: LoanHarness) -> None:
    today = await loans.today()
    handle = await loans.apply(application(today))
    loan_id = handle.id.removeprefix("loan-")

    status = await loans.wait_for_stage(handle, Stage.INVESTIGATION)
    # rule A-4: a new customer gets 7 working days from complete materials
    calendar = loans.calendar()
    assert status.decision_due == decision_deadline(today, False, False, loans.policy, calendar)
    assert {t.kind for t in rows(loans, Task, loan_id=loan_id, status="open")} == {"investigate"}

    first = await handle.execute_update(
        LoanWorkflow.submit_investigation,
        SubmitInvestigation(actor=actor("officer1"), report=report()),
    )
    assert first.investigators_reported == ["officer1"]
    assert first.reports == []  # rule I-1: blind until both reports are in
    status = await handle.execute_update(
        LoanWorkflow.submit_investigation,
        SubmitInvestigation(actor=actor("officer2"), report=report()),
    )
    assert status.stage is Stage.REVIEW
    assert len(status.reports) == 2 and status.discrepancies == []
    assert status.credit_report is not None  # rule I-4

    status = await handle.execute_update(
        LoanWorkflow.review_loan, SubmitReview(actor=actor("reviewer1"), review=forward())
    )
    assert status.stage is Stage.APPROVAL
    status = await handle.execute_update(
        LoanWorkflow.decide_loan,
        DecideLoan(
            actor=actor("approver1"), decision=approve("28000", conditions=["保证合同公证"])
        ),
    )
    assert status.stage is Stage.SIGNING
    assert status.approved is not None and status.approved.amount == Decimal("28000")
    assert status.signing_deadline == signing_deadline(today, loans.policy)

    status = await handle.execute_update(
        LoanWorkflow.sign_contract,
        SignContract(actor=actor("officer1"), signing=signing(today, ["保证合同公证"])),
    )
    assert status.stage is Stage.DISBURSING
    await loans.wait_for_stage(handle, Stage.REPAYING)

    status = await handle.query(LoanWorkflow.status)
    assert len(status.schedule) == 12
    principal, _interest, _payment = schedule_totals(status.schedule)
    assert principal == Decimal("28000")  # rule C-4: the schedule reconciles to the cent
    register = rows(loans, LoanRecord, loan_id=loan_id)[0]
    assert register.stage == "repaying" and register.amount_approved_fen == 2_800_000
    assert register.id_number_masked.count("*") == 10  # rule H-3
    assert len(rows(loans, ScheduledInstallment, loan_id=loan_id)) == 12
    # rule K-1: the only open task is the first check of this livestock (business) loan.
    [check] = rows(loans, Task, loan_id=loan_id, status="open")
    assert (check.kind, check.due_date) == ("inspection", today + timedelta(days=15))
    ledger = SqlLedger(loans.sessions)
    assert ledger.balance(LOANS_RECEIVABLE, loan_id) == Decimal("28000")  # rule C-3

    def sms() -> list[str]:
        return sorted(n.template for n in rows(loans, Notification, loan_id=loan_id, channel="sms"))

    await loans.eventually(lambda: len(sms()) == 3)
    assert sms() == ["application_received", "loan_approved", "loan_disbursed"]


async def test_refused_at_intake_records_reasons(loans: LoanHarness) -> None:
    today = await loans.today()
    # rule E-1: 40 + 36/12 is fine, but 58 + 3 = 61 is not; rule E-9: 80% of income
    app = application(
        today,
        birth_date=today.replace(year=today.year - 58, month=1, day=1).isoformat(),
        term_months=36,
        repayment_method="equal_installment",
        household_annual_income="30000",
    )
    app = app.model_copy(
        update={
            "applicant": app.applicant.model_copy(
                update={"id_number": _id_for(app.applicant.birth_date)}
            )
        }
    )
    handle = await loans.apply(app)
    outcome: LoanOutcome = await handle.result()
    assert outcome.stage is Stage.REFUSED
    assert {"E-1", "E-9"} <= {r.rule for r in outcome.reasons}
    register = rows(loans, LoanRecord, loan_id=outcome.loan_id)[0]
    assert register.stage == "refused"
    assert {r["rule"] for r in register.outcome_reasons} >= {"E-1", "E-9"}


def _id_for(birth: Any) -> str:
    from domain.ids import make_resident_id

    return make_resident_id("410102", birth, "123")


async def test_second_application_of_a_household_is_refused(loans: LoanHarness) -> None:
    today = await loans.today()
    first = application(today)
    await loans.apply(first)
    await _wait_for_register(loans)
    second = await loans.apply(first)  # rule E-7: same household while the first is open
    outcome: LoanOutcome = await second.result()
    assert outcome.stage is Stage.REFUSED
    assert outcome.reasons[0].rule == "E-7" and outcome.reasons[0].kind == "conflict"


async def _wait_for_register(loans: LoanHarness) -> None:
    import asyncio

    for _ in range(100):
        if rows(loans, LoanRecord):
            return
        await asyncio.sleep(0.05)


async def test_materials_incomplete_waits_then_starts_the_clock(loans: LoanHarness) -> None:
    today = await loans.today()
    handle = await loans.apply(application(today, materials=["id_card", "household_register"]))
    status = await loans.wait_for_stage(handle, Stage.MATERIALS_INCOMPLETE)
    assert status.decision_due is None  # rule E-13: the A-4 clock has not started
    assert set(status.materials_missing) == {
        Material.INCOME_PROOF,
        Material.BUSINESS_PROOF,
        Material.CREDIT_RECORD,
    }
    refused = await refusal(
        handle,
        LoanWorkflow.submit_investigation,
        SubmitInvestigation(actor=actor("officer1"), report=report()),
    )
    assert refused["rule"] == "I-1" and refused["kind"] == "conflict"
    status = await handle.execute_update(
        LoanWorkflow.supply_materials,
        SupplyMaterials(
            actor=actor("officer1"),
            materials=[Material.INCOME_PROOF, Material.BUSINESS_PROOF, Material.CREDIT_RECORD],
        ),
    )
    assert status.stage is Stage.INVESTIGATION and status.decision_due is not None


async def test_steps_by_the_wrong_person_are_refused_and_change_nothing(
    loans: LoanHarness,
) -> None:
    today = await loans.today()
    handle = await loans.apply(application(today))
    await loans.wait_for_stage(handle, Stage.INVESTIGATION)
    await handle.execute_update(
        LoanWorkflow.submit_investigation,
        SubmitInvestigation(actor=actor("officer1"), report=report()),
    )
    # rule I-1: the same officer cannot submit the second report
    refused = await refusal(
        handle,
        LoanWorkflow.submit_investigation,
        SubmitInvestigation(actor=actor("officer1"), report=report()),
    )
    assert refused["rule"] == "I-1" and refused["kind"] == "conflict"
    # wrong branch: officer3 works at CB02
    refused = await refusal(
        handle,
        LoanWorkflow.submit_investigation,
        SubmitInvestigation(actor=actor("officer3"), report=report()),
    )
    assert refused["kind"] == "forbidden"
    # wrong stage: a decision while the loan is still under investigation
    refused = await refusal(
        handle, LoanWorkflow.decide_loan, DecideLoan(actor=actor("approver1"), decision=approve())
    )
    assert refused["kind"] == "conflict" and refused["rule"] == "A-2"
    status = await handle.query(LoanWorkflow.status)
    assert status.stage is Stage.INVESTIGATION and status.investigators_reported == ["officer1"]

    await handle.execute_update(
        LoanWorkflow.submit_investigation,
        SubmitInvestigation(actor=actor("officer2"), report=report()),
    )
    # rule A-1: an investigator may not review, even holding the reviewer's role
    investigator_as_reviewer = actor("reviewer1").model_copy(update={"username": "officer2"})
    refused = await refusal(
        handle,
        LoanWorkflow.review_loan,
        SubmitReview(actor=investigator_as_reviewer, review=forward()),
    )
    assert refused["rule"] == "A-1" and refused["kind"] == "forbidden"
    await handle.execute_update(
        LoanWorkflow.review_loan, SubmitReview(actor=actor("reviewer1"), review=forward())
    )
    # rule A-1: an investigator approving
    refused = await refusal(
        handle, LoanWorkflow.decide_loan, DecideLoan(actor=actor("officer1"), decision=approve())
    )
    assert refused["rule"] == "A-1" and refused["kind"] == "forbidden"
    # rule A-2: approver2's personal limit is 20 000 yuan
    refused = await refusal(
        handle, LoanWorkflow.decide_loan, DecideLoan(actor=actor("approver2"), decision=approve())
    )
    assert refused["rule"] == "A-2" and refused["kind"] == "forbidden"
    status = await handle.query(LoanWorkflow.status)
    assert status.stage is Stage.APPROVAL and status.approved is None


async def test_approver_of_the_borrowers_household_is_refused(loans: LoanHarness) -> None:
    today = await loans.today()
    app = application(today)
    handle = await loans.apply(app)
    await investigate(loans, handle)
    await handle.execute_update(
        LoanWorkflow.review_loan, SubmitReview(actor=actor("reviewer1"), review=forward())
    )
    relative = actor("approver1").model_copy(update={"household_id": app.applicant.household_id})
    refused = await refusal(
        handle, LoanWorkflow.decide_loan, DecideLoan(actor=relative, decision=approve())
    )
    assert refused["rule"] == "A-1" and refused["kind"] == "forbidden"


async def test_duplicate_submission_with_the_same_update_id_has_one_effect(
    loans: LoanHarness,
) -> None:
    today = await loans.today()
    handle = await loans.apply(application(today))
    await loans.wait_for_stage(handle, Stage.INVESTIGATION)
    step = SubmitInvestigation(actor=actor("officer1"), report=report())
    first = await handle.execute_update(LoanWorkflow.submit_investigation, step, id="req-1")
    again = await handle.execute_update(LoanWorkflow.submit_investigation, step, id="req-1")
    assert first == again
    assert (await handle.query(LoanWorkflow.status)).investigators_reported == ["officer1"]


async def test_return_to_investigation_then_approve(loans: LoanHarness) -> None:
    today = await loans.today()
    handle = await loans.apply(application(today))
    await investigate(loans, handle)
    await handle.execute_update(
        LoanWorkflow.review_loan, SubmitReview(actor=actor("reviewer1"), review=forward())
    )
    from domain.loan import Decision, DecisionOutcome

    status = await handle.execute_update(
        LoanWorkflow.decide_loan,
        DecideLoan(
            actor=actor("approver1"),
            decision=Decision(outcome=DecisionOutcome.RETURN, reason="补充养殖场租赁合同"),
        ),
    )
    assert status.stage is Stage.INVESTIGATION and status.round == 2
    assert status.investigators_reported == [] and status.reports == []
    loan_id = status.loan_id
    open_tasks = rows(loans, Task, loan_id=loan_id, status="open")
    assert sorted(t.task_key for t in open_tasks) == [
        f"{loan_id}:r2:investigate:1",
        f"{loan_id}:r2:investigate:2",
    ]
    await investigate(loans, handle)
    await handle.execute_update(
        LoanWorkflow.review_loan, SubmitReview(actor=actor("reviewer1"), review=forward())
    )
    status = await handle.execute_update(
        LoanWorkflow.decide_loan, DecideLoan(actor=actor("approver1"), decision=approve())
    )
    assert status.stage is Stage.SIGNING
    assert [s.outcome for s in status.steps if s.step == "decision"] == ["return", "approve"]


async def test_rejection_ends_the_loan_and_frees_the_household(loans: LoanHarness) -> None:
    today = await loans.today()
    app = application(today)
    handle = await loans.apply(app)
    await investigate(loans, handle)
    await handle.execute_update(
        LoanWorkflow.review_loan, SubmitReview(actor=actor("reviewer1"), review=forward())
    )
    from domain.loan import Decision, DecisionOutcome

    await handle.execute_update(
        LoanWorkflow.decide_loan,
        DecideLoan(
            actor=actor("approver1"),
            decision=Decision(outcome=DecisionOutcome.REJECT, reason="经营风险过高"),
        ),
    )
    outcome: LoanOutcome = await handle.result()
    assert outcome.stage is Stage.REJECTED and outcome.reasons[0].rule == "A-3"
    # rule E-7: the household may apply again. Waiting for a result lets the test server skip
    # time, so the new application is dated (and its rating taken) on the new today.
    later = await loans.today()
    again = await loans.apply(application(later, household_id=app.applicant.household_id))
    status = await loans.wait_for_stage(again, Stage.INVESTIGATION)
    assert status.round == 1, status.outcome_reasons


async def test_sla_breach_reminds_owner_and_head(loans: LoanHarness) -> None:
    from api.services.users import seed_development_data

    with loans.sessions() as session:
        seed_development_data(session)
    today = await loans.today()
    handle = await loans.apply(application(today))
    status = await loans.wait_for_stage(handle, Stage.INVESTIGATION)
    assert status.decision_due is not None and not status.sla_breached
    # rule A-4: 7 working days for a new customer; on the last day the loan is not late yet
    await loans.env.sleep(status.decision_due - today)
    assert not (await handle.query(LoanWorkflow.status)).sla_breached
    await loans.env.sleep(timedelta(days=2))
    status = await handle.query(LoanWorkflow.status)
    assert status.sla_breached

    def reminded() -> set[str]:
        return {
            n.recipient
            for n in rows(loans, Notification, loan_id=status.loan_id, channel="staff")
            if n.template == "staff_task_late"
        }

    await loans.eventually(lambda: rows(loans, LoanRecord, loan_id=status.loan_id)[0].sla_breached)
    assert {"officer1", "officer2", "head1"} <= reminded()
    assert "officer3" not in reminded()  # another branch


async def test_signing_window_lapses_after_30_days(loans: LoanHarness) -> None:
    today = await loans.today()
    app = application(today)
    handle = await loans.apply(app)
    await through_approval(loans, handle)
    await loans.env.sleep(timedelta(days=29))  # rule C-1: still inside the window
    assert (await handle.query(LoanWorkflow.status)).stage is Stage.SIGNING
    await loans.env.sleep(timedelta(days=2))
    outcome: LoanOutcome = await handle.result()
    assert outcome.stage is Stage.LAPSED and outcome.reasons[0].rule == "C-1"
    sms = [n.template for n in rows(loans, Notification, loan_id=outcome.loan_id, channel="sms")]
    assert "approval_lapsed" in sms


async def test_signing_after_the_window_is_refused(loans: LoanHarness) -> None:
    today = await loans.today()
    handle = await loans.apply(application(today))
    await through_approval(loans, handle)
    late = signing(today + timedelta(days=31))
    refused = await refusal(
        handle, LoanWorkflow.sign_contract, SignContract(actor=actor("officer1"), signing=late)
    )
    assert refused["rule"] == "C-1"


async def test_prefecture_route_for_a_large_amount(loans: LoanHarness) -> None:
    today = await loans.today()
    app = application(
        today,
        amount="80000",
        term_months=24,
        repayment_method="equal_installment",
        household_annual_income="200000",
    )
    handle = await loans.apply(app)
    await investigate(loans, handle, amount="80000", term=24)
    status = await handle.execute_update(
        LoanWorkflow.review_loan, SubmitReview(actor=actor("reviewer1"), review=forward())
    )
    assert status.stage is Stage.BRANCH_CONFIRMATION  # rule A-2
    status = await handle.execute_update(
        LoanWorkflow.confirm_as_branch_head,
        ConfirmAsBranchHead(actor=actor("head1"), review=forward("同意报二级分行")),
    )
    assert status.stage is Stage.PREFECTURE_REVIEW
    refused = await refusal(
        handle, LoanWorkflow.review_loan, SubmitReview(actor=actor("reviewer1"), review=forward())
    )
    assert refused["kind"] == "forbidden"  # the county reviewer is not the prefecture's
    status = await handle.execute_update(
        LoanWorkflow.review_loan, SubmitReview(actor=actor("pref_reviewer"), review=forward())
    )
    assert status.stage is Stage.APPROVAL
    assert status.open_tasks[0].branch_code == "PF01"
    refused = await refusal(
        handle,
        LoanWorkflow.decide_loan,
        DecideLoan(actor=actor("approver1"), decision=approve("80000", 24)),
    )
    assert refused["rule"] == "A-2" and refused["kind"] == "forbidden"
    status = await handle.execute_update(
        LoanWorkflow.decide_loan,
        DecideLoan(actor=actor("pref_approver"), decision=approve("80000", 24)),
    )
    assert status.stage is Stage.SIGNING and status.approved is not None


async def test_withdrawal_before_disbursement(loans: LoanHarness) -> None:
    today = await loans.today()
    handle = await loans.apply(application(today))
    await through_approval(loans, handle)
    await handle.execute_update(
        LoanWorkflow.withdraw_application,
        WithdrawApplication(actor=actor("officer1"), reason="借款人已筹得资金"),
    )
    outcome: LoanOutcome = await handle.result()
    assert outcome.stage is Stage.WITHDRAWN


async def test_disbursement_retried_after_a_failure_posts_once(
    loans: LoanHarness,
) -> None:
    """rule C-3: attempt 1 posts, then dies before reporting; the retry must not post again."""
    attempts: list[int] = []
    real = LedgerActivities(SqlLedger(loans.sessions))

    @activity.defn(name="post_disbursement")
    def flaky_post_disbursement(inp: PostDisbursementInput) -> PostingResult:
        result = real.post_disbursement(inp)
        attempts.append(activity.info().attempt)
        if activity.info().attempt == 1:
            raise RuntimeError("connection lost after the ledger committed")
        return result

    async with loans.replacing("post_disbursement", flaky_post_disbursement):
        today = await loans.today()
        handle = await loans.apply(application(today))
        await through_approval(loans, handle)
        await handle.execute_update(
            LoanWorkflow.sign_contract,
            SignContract(actor=actor("officer1"), signing=signing(today)),
        )
        status = await loans.wait_for_stage(handle, Stage.REPAYING)
    assert attempts == [1, 2]
    entries = rows(loans, JournalEntry, loan_id=status.loan_id)
    assert len(entries) == 1
    assert SqlLedger(loans.sessions).balance(LOANS_RECEIVABLE, status.loan_id) == Decimal("30000")


async def test_splitting_a_withdrawn_application_into_pieces_is_refused(
    loans: LoanHarness,
) -> None:
    """rule E-15: 40 000 withdrawn, then 20 000: together they need the prefecture tier."""
    today = await loans.today()
    first = application(today, amount="40000")
    handle = await loans.apply(first)
    await loans.wait_for_stage(handle, Stage.INVESTIGATION)
    await handle.execute_update(
        LoanWorkflow.withdraw_application,
        WithdrawApplication(actor=actor("officer1"), reason="借款人改为分次申请"),
    )
    await loans.wait_for_stage(handle, Stage.WITHDRAWN)
    await loans.eventually(lambda: not rows(loans, HouseholdClaim))  # rule E-7: released
    piece = application(today, amount="20000", household_id=first.applicant.household_id)
    outcome: LoanOutcome = await (await loans.apply(piece)).result()
    assert outcome.stage is Stage.REFUSED
    assert [r.rule for r in outcome.reasons] == ["E-15"]
    assert "60,000.00" in outcome.reasons[0].message


async def test_a_notice_that_cannot_be_sent_never_stops_the_loan(loans: LoanHarness) -> None:
    """A broken SMS is logged; intake, the household's claim and the loan go on."""

    @activity.defn(name="send_sms")
    def broken_send_sms(inp: object) -> None:
        raise ApplicationError("gateway template missing", non_retryable=True)

    async with loans.replacing("send_sms", broken_send_sms):
        handle = await loans.apply(application(await loans.today()))
        status = await loans.wait_for_stage(handle, Stage.INVESTIGATION)
    assert status.outcome_reasons == []
