"""Figures as of today (当日口径), on the time-skipping server: between the workflow's own
events the loan's readers (its status, the register) bring days past due, bucket, class and
the accrued penalty and compound interest to their own day, by the workflow's rules.

The readers' clock is set to the server's: the API's clock is the real one, which the
time-skipping server has left behind.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from api.services import figures
from api.services import loans as register
from api.services.loans import loan_detail
from domain.loan import Bucket, LoanClass
from domain.money import CENT
from store.models import LoanRecord
from tests.samples import actor, application
from tests.workflows.conftest import LoanHarness
from tests.workflows.steps import disbursed, rows, spend_proceeds
from tests.workflows.test_servicing import sleep_until, status_of

D = Decimal
# P-1: daily rate = annual / 360; P-5: overdue principal at the contract rate × 1.5, and
# unpaid interest compounds at the same rate.
DAYS_IN_YEAR = 360
PENALTY_MULTIPLIER = D("1.5")


def per_day(amount: Decimal, rate: Decimal) -> Decimal:
    return amount * rate * PENALTY_MULTIPLIER / DAYS_IN_YEAR


async def test_ten_days_past_maturity_the_status_says_ten_days_and_their_penalty(
    loans: LoanHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = application(
        await loans.today(),
        purpose="durable_goods",
        repayment_method="lump_sum",
        term_months=6,
        amount="10000",
    )
    handle, status = await disbursed(loans, app)
    loan_id = status.loan_id
    assert status.approved is not None
    rate = status.approved.annual_rate
    assert (status.approved.amount, rate) == (D("10000"), D("0.0720"))
    spend_proceeds(loans.sessions, status, app.applicant.settlement_account)
    [line] = status.schedule  # lump sum: principal and interest at maturity
    assert line.principal == D("10000")

    def register_row() -> LoanRecord:
        [row] = rows(loans, LoanRecord, loan_id=loan_id)
        return row

    # The day after maturity the workflow's band event (F-3) projects 1 day past due.
    await sleep_until(loans, line.due_date + timedelta(days=1))
    await loans.eventually(lambda: register_row().days_past_due == 1)
    written = register_row().revision

    # Nine more days with no event of the workflow's: what it wrote and what it says age.
    await sleep_until(loans, line.due_date + timedelta(days=10))
    assert (register_row().revision, register_row().days_past_due) == (written, 1)
    own = (await status_of(handle)).servicing
    assert own is not None and own.days_past_due == 1

    day = await loans.today()
    assert day == line.due_date + timedelta(days=10)
    monkeypatch.setattr(figures, "china_today", lambda: day)
    penalty = (per_day(line.principal, rate) * 10).quantize(CENT)
    assert penalty == D("30.00")
    # Compound interest is rounded once per accrual period (the workflow's, then today's).
    compound = per_day(line.interest, rate) * 10

    with loans.sessions() as session:
        detail = await loan_detail(session, loans.client, actor("officer1"), loan_id)
        [line_today] = [
            loan
            for loan in register.list_loans(session, actor("officer1"), stage="repaying")
            if loan.loan_id == loan_id
        ]
    assert detail.workflow is not None and detail.loan is not None
    view = detail.workflow.servicing
    assert view is not None
    # F-1: 1-90 days 关注; D-4: 1-30 days M1.
    assert (view.today, view.days_past_due, view.loan_class, view.bucket) == (
        day,
        10,
        LoanClass.SPECIAL_MENTION,
        Bucket.M1,
    )
    assert view.penalty_interest == penalty
    assert abs(view.compound_interest - compound) <= CENT
    assert view.arrears == line.principal + line.interest + penalty + view.compound_interest
    for summary in (detail.loan, line_today):
        assert (summary.days_past_due, summary.loan_class, summary.bucket) == (
            10,
            LoanClass.SPECIAL_MENTION.value,
            Bucket.M1.value,
        )
        assert (summary.penalty_interest, summary.compound_interest, summary.arrears) == (
            penalty,
            view.compound_interest,
            view.arrears,
        )

    # The workflow still acts on its own timers: on day 31 it moves the loan to M2 (D-4)
    # itself, and the readers show what it wrote.
    await sleep_until(loans, line.due_date + timedelta(days=31))
    await loans.eventually(lambda: register_row().days_past_due == 31)
    assert register_row().bucket == Bucket.M2.value
    later = await loans.today()
    monkeypatch.setattr(figures, "china_today", lambda: later)
    with loans.sessions() as session:
        detail = await loan_detail(session, loans.client, actor("officer1"), loan_id)
    assert detail.workflow is not None and detail.workflow.servicing is not None
    view = detail.workflow.servicing
    assert (view.days_past_due, view.bucket) == (31, Bucket.M2)
    assert view.penalty_interest == (per_day(line.principal, rate) * 31).quantize(CENT)
