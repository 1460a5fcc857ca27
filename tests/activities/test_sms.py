"""SMS delivery: the texts' length and masking, the HTTP gateway against the local stub,
and the delivery activities on the outbox (H-3, P-3, D-1, D-2)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities, SendSmsInput
from activities.sms import DeliverSmsInput, SmsActivities, SmsFailureInput
from adapters.notifications import OutboundMessage, OutboxNotifier, TemplateRenderer
from adapters.sms_gateway import (
    ERROR_TEXT_LIMIT,
    HttpSmsGateway,
    SmsGatewayError,
    SmsMessage,
    short_error,
)
from adapters.sms_stub import StubSmsGateway
from api.services.records import notifications
from domain.ids import mask_pii
from domain.notices import RULE_LABELS_ZH
from domain.sms import MAX_SMS_SEGMENTS, sms_segments
from store.db import SessionFactory
from store.models import Notification

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PHONE = "13812345678"
ID_NUMBER = "410102198503120030"

# Worst cases that still happen: an eleven-character Uyghur name, the longest loan id the
# API issues, a long institution name, every refusal reason at once, the largest
# amounts a 200 000 yuan loan reaches with years of arrears, two-digit months and days.
LONG = {
    "name": "阿卜杜热合曼·买买提明",
    "loan_id": "LN20261231ABCD1234",
    "institution": "示范自治县农村商业银行股份有限公司",
}
AMOUNT = Decimal("999999.99")
DAY = date(2026, 12, 31)
ALL_REASONS = "、".join(sorted(RULE_LABELS_ZH.values(), key=len, reverse=True))
WORST: dict[str, dict[str, Any]] = {
    "application_received": {**LONG, "amount": Decimal("200000.00")},
    "application_refused": {**LONG, "reasons": ALL_REASONS},
    "loan_rejected": {**LONG, "reason": ALL_REASONS},
    "application_withdrawn": LONG,
    "approval_lapsed": LONG,
    "loan_approved": {
        **LONG,
        "amount": Decimal("200000.00"),
        "term_months": 36,
        "annual_rate": Decimal("0.123456"),
        "signing_deadline": DAY,
    },
    "loan_disbursed": {
        **LONG,
        "amount": Decimal("200000.00"),
        "settlement_account_masked": "****5678",
        "installments": 36,
        "first_due_date": DAY,
        "first_payment": AMOUNT,
        "maturity_date": DAY,
    },
    "interest_reminder": {
        **LONG,
        "due_date": DAY,
        "payment": AMOUNT,
        "installment": 36,
        "installments": 36,
        "settlement_account_masked": "****5678",
    },
    "maturity_notice": {
        **LONG,
        "due_date": DAY,
        "payment": AMOUNT,
        "settlement_account_masked": "****5678",
    },
    "installment_collected": {
        **LONG,
        "amount": AMOUNT,
        "due_date": DAY,
        "next_due_date": DAY,
        "next_payment": AMOUNT,
    },
    "installment_unpaid": {
        **LONG,
        "collected": AMOUNT,
        "unpaid": AMOUNT,
        "due_date": DAY,
        "settlement_account_masked": "****5678",
    },
    "payment_received": {
        **LONG,
        "amount": AMOUNT,
        "arrears": AMOUNT,
        "settlement_account_masked": "****5678",
    },
    "loan_settled": {**LONG, "closed_on": DAY},
    "overdue_reminder": {**LONG, "arrears": AMOUNT, "overdue_since": DAY},
    "guarantor_notice": {
        **LONG,
        "guarantor": "热依拉·阿不都热合曼",
        "arrears": AMOUNT,
        "overdue_since": DAY,
    },
    "staff_task_late": {
        "loan_id": LONG["loan_id"],
        "tasks": ["二级分行审查", "补充申请资料", "贷前调查", "行长确认"],
        "deadline": DAY,
    },
}


def test_every_sms_template_has_a_worst_case() -> None:
    names = {p.name.removesuffix(".txt.j2") for p in (TEMPLATES / "sms").glob("*.txt.j2")}
    assert names == set(WORST)


@pytest.mark.parametrize("name", sorted(WORST))
def test_worst_case_text_fits_two_segments_and_is_masked(name: str) -> None:
    """Each text fits two SMS however long the names and figures (P-3, D-1, D-2 ...), and
    never carries a full ID or phone number (H-3)."""
    text = TemplateRenderer(TEMPLATES).render(name, WORST[name])
    assert sms_segments(text) <= MAX_SMS_SEGMENTS, f"{name}: {len(text)} chars: {text}"
    assert mask_pii(text) == text
    assert PHONE not in text and ID_NUMBER not in text


def test_refusals_name_at_most_three_conditions() -> None:
    renderer = TemplateRenderer(TEMPLATES)
    text = renderer.render("application_refused", WORST["application_refused"])
    assert "原因：同一农户已有贷款申请或贷款、未在规定期限内签订合同、不符合准入条件等。" in text
    one = renderer.render("loan_rejected", {**LONG, "reason": "贷款金额"})
    assert "原因：贷款金额。" in one


def test_send_sms_refuses_a_text_over_two_segments(sessions: SessionFactory) -> None:
    activities = NotificationActivities(OutboxNotifier(sessions), TemplateRenderer(TEMPLATES))
    inp = SendSmsInput(
        idempotency_key="loan-L1/sms/application_received/r0",
        loan_id="L1",
        phone=PHONE,
        template="application_received",
        context={**WORST["application_received"], "name": "欧阳" * 25},
    )
    with pytest.raises(ApplicationError) as info:
        ActivityEnvironment().run(activities.send_sms, inp)
    assert info.value.non_retryable and info.value.type == "TemplateError"
    assert "segments" in str(info.value)
    with sessions() as session:
        assert session.exec(select(Notification)).all() == []


# ---------------------------------------------------------------- the gateway and the stub


@pytest.fixture
def stub() -> Iterator[StubSmsGateway]:
    with StubSmsGateway() as running:
        yield running


BODY = "张大山您好，贷款已发放。【示范县农村信用合作联社】"


def message(key: str = "loan-L1/sms/due-1") -> SmsMessage:
    return SmsMessage(message_id=key, phone=PHONE, text=BODY)


def test_gateway_delivers_and_the_stub_drops_a_repeated_message_id(stub: StubSmsGateway) -> None:
    gateway = HttpSmsGateway(stub.url, timeout_seconds=2)
    first = gateway.send(message())
    again = gateway.send(message())
    other = gateway.send(message("loan-L1/sms/due-2"))
    assert first.gateway_message_id == again.gateway_message_id == "stub-1"
    assert other.gateway_message_id == "stub-2"
    assert list(stub.accepted) == ["loan-L1/sms/due-1", "loan-L1/sms/due-2"]
    assert stub.requests["loan-L1/sms/due-1"] == 2
    assert stub.accepted["loan-L1/sms/due-1"].phone == PHONE


@pytest.mark.parametrize(("status", "retryable"), [(503, True), (500, True), (429, True)])
def test_server_errors_and_throttling_are_retryable(
    stub: StubSmsGateway, status: int, retryable: bool
) -> None:
    stub.fail_first, stub.fail_status = 1, status
    gateway = HttpSmsGateway(stub.url, timeout_seconds=2)
    with pytest.raises(SmsGatewayError) as info:
        gateway.send(message())
    assert info.value.retryable is retryable
    assert str(info.value).startswith(f"gateway answered {status}")
    assert gateway.send(message()).gateway_message_id == "stub-1"


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_client_errors_are_permanent(stub: StubSmsGateway, status: int) -> None:
    stub.fail_first, stub.fail_status = 1, status
    with pytest.raises(SmsGatewayError) as info:
        HttpSmsGateway(stub.url, timeout_seconds=2).send(message())
    assert not info.value.retryable


def test_the_stub_refuses_a_malformed_message(stub: StubSmsGateway) -> None:
    bad = message().model_copy(update={"phone": "not a phone"})
    with pytest.raises(SmsGatewayError) as info:
        HttpSmsGateway(stub.url, timeout_seconds=2).send(bad)
    assert not info.value.retryable and "phone invalid" in str(info.value)
    assert stub.accepted == {}


def test_a_timeout_is_retryable(stub: StubSmsGateway) -> None:
    stub.fail_first, stub.fail_delay = 1, 1.0
    with pytest.raises(SmsGatewayError) as info:
        HttpSmsGateway(stub.url, timeout_seconds=0.2).send(message())
    assert info.value.retryable and "timed out" in str(info.value)


def test_an_unreachable_gateway_is_retryable() -> None:
    with StubSmsGateway() as gone:
        url = gone.url
    with pytest.raises(SmsGatewayError) as info:
        HttpSmsGateway(url, timeout_seconds=1).send(message())
    assert info.value.retryable and "unreachable" in str(info.value)


def test_errors_are_masked_and_short() -> None:
    error = short_error(f"gateway answered 400: bad number {PHONE}\n" + "x" * 1000)
    assert PHONE not in error and "138****5678" in error
    assert len(error) == ERROR_TEXT_LIMIT and "\n" not in error


def test_the_stub_logs_each_text_with_the_phone_masked(
    stub: StubSmsGateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="loanflow.sms_stub"):
        HttpSmsGateway(stub.url, timeout_seconds=2).send(message())
    assert "138****5678" in caplog.text and "贷款已发放" in caplog.text
    assert PHONE not in caplog.text


# ---------------------------------------------------------------- the delivery activities


def queue(sessions: SessionFactory, key: str = "loan-L1/sms/due-1", channel: str = "sms") -> int:
    result = OutboxNotifier(sessions).send(
        OutboundMessage(
            idempotency_key=key,
            loan_id="L1",
            channel=channel,  # type: ignore[arg-type]
            recipient=PHONE if channel == "sms" else "officer1",
            template="loan_disbursed",
            body=BODY,
        )
    )
    return result.notification_id


def row(sessions: SessionFactory, notification_id: int) -> Notification:
    with sessions() as session:
        found = session.get(Notification, notification_id)
        assert found is not None
        return found


def test_deliver_records_the_delivery_and_a_rerun_posts_nothing(
    sessions: SessionFactory, stub: StubSmsGateway
) -> None:
    sms = SmsActivities(sessions, HttpSmsGateway(stub.url, timeout_seconds=2))
    notification_id = queue(sessions)
    env = ActivityEnvironment()
    inp = DeliverSmsInput(notification_id=notification_id)
    results = [env.run(sms.deliver_sms, inp) for _ in range(2)]
    assert [(r.status, r.attempts) for r in results] == [("delivered", 1), ("delivered", 1)]
    assert stub.requests["loan-L1/sms/due-1"] == 1
    delivered = row(sessions, notification_id)
    assert delivered.status == "delivered" and delivered.attempts == 1
    assert delivered.gateway_message_id == "stub-1" and delivered.delivered_at is not None
    assert delivered.last_error is None


def test_a_retryable_failure_is_recorded_and_raised_as_retryable(
    sessions: SessionFactory, stub: StubSmsGateway
) -> None:
    stub.fail_first = 1
    sms = SmsActivities(sessions, HttpSmsGateway(stub.url, timeout_seconds=2))
    notification_id = queue(sessions)
    with pytest.raises(ApplicationError) as info:
        ActivityEnvironment().run(sms.deliver_sms, DeliverSmsInput(notification_id=notification_id))
    assert not info.value.non_retryable and info.value.type == "SmsGatewayUnavailable"
    pending = row(sessions, notification_id)
    assert (pending.status, pending.attempts) == ("queued", 1)
    assert pending.last_error is not None and pending.last_error.startswith("gateway answered 503")


def test_a_permanent_failure_is_not_retryable(
    sessions: SessionFactory, stub: StubSmsGateway
) -> None:
    stub.fail_first, stub.fail_status = 1, 400
    sms = SmsActivities(sessions, HttpSmsGateway(stub.url, timeout_seconds=2))
    notification_id = queue(sessions)
    with pytest.raises(ApplicationError) as info:
        ActivityEnvironment().run(sms.deliver_sms, DeliverSmsInput(notification_id=notification_id))
    assert info.value.non_retryable and info.value.type == "SmsRejected"


def test_without_a_gateway_nothing_is_posted(sessions: SessionFactory) -> None:
    notification_id = queue(sessions)
    with pytest.raises(ApplicationError) as info:
        ActivityEnvironment().run(
            SmsActivities(sessions, None).deliver_sms,
            DeliverSmsInput(notification_id=notification_id),
        )
    assert not info.value.non_retryable
    pending = row(sessions, notification_id)
    assert (pending.status, pending.attempts) == ("queued", 0)
    assert pending.last_error == "no SMS gateway configured"


def test_only_sms_rows_are_delivered(sessions: SessionFactory, stub: StubSmsGateway) -> None:
    sms = SmsActivities(sessions, HttpSmsGateway(stub.url, timeout_seconds=2))
    for notification_id in (queue(sessions, "k-staff", channel="staff"), 999):
        with pytest.raises(ApplicationError) as info:
            ActivityEnvironment().run(
                sms.deliver_sms, DeliverSmsInput(notification_id=notification_id)
            )
        assert info.value.non_retryable and info.value.type == "SmsNotFound"
    assert stub.requests == {}


def test_giving_up_records_failed_with_the_last_error(
    sessions: SessionFactory, stub: StubSmsGateway
) -> None:
    stub.fail_first = 1
    sms = SmsActivities(sessions, HttpSmsGateway(stub.url, timeout_seconds=2))
    env = ActivityEnvironment()
    notification_id = queue(sessions)
    with pytest.raises(ApplicationError):
        env.run(sms.deliver_sms, DeliverSmsInput(notification_id=notification_id))
    timed_out = SmsFailureInput(
        notification_id=notification_id, gave_up="gave up: schedule_to_close timeout"
    )
    result = env.run(sms.record_sms_failure, timed_out)
    assert (result.status, result.attempts) == ("failed", 1)
    failed = row(sessions, notification_id)
    assert failed.status == "failed"
    assert failed.last_error is not None
    assert failed.last_error.startswith("gave up: schedule_to_close timeout; gateway answered 503")
    # A row the gateway took stays delivered.
    stub.fail_first = 0
    delivered_id = queue(sessions, "loan-L1/sms/due-2")
    env.run(sms.deliver_sms, DeliverSmsInput(notification_id=delivered_id))
    late = env.run(sms.record_sms_failure, SmsFailureInput(notification_id=delivered_id))
    assert late.status == "delivered" and row(sessions, delivered_id).status == "delivered"


def test_the_outbox_view_shows_the_delivery_masked(
    sessions: SessionFactory, stub: StubSmsGateway
) -> None:
    sms = SmsActivities(sessions, HttpSmsGateway(stub.url, timeout_seconds=2))
    delivered_id = queue(sessions)
    ActivityEnvironment().run(sms.deliver_sms, DeliverSmsInput(notification_id=delivered_id))
    queue(sessions, "loan-L1/sms/due-2")
    with sessions() as session:
        views = notifications(session, loan_id="L1")
    by_id = {v.id: v for v in views}
    delivered = by_id[delivered_id]
    assert (delivered.status, delivered.attempts, delivered.recipient) == (
        "delivered",
        1,
        "138****5678",
    )
    assert delivered.delivered_at is not None and delivered.delivered_at.tzinfo is not None
    [queued] = [v for v in views if v.id != delivered_id]
    assert (queued.status, queued.attempts, queued.delivered_at) == ("queued", 0, None)
