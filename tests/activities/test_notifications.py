"""The outbox notifier, the SMS templates and the notification activities (rules H-3, C-4, A-4)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError
from sqlmodel import col, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities, NotifyStaffInput, SendSmsInput
from adapters.notifications import (
    OutboundMessage,
    OutboxNotifier,
    TemplateRenderer,
    UnmaskedPersonalData,
    date_cn,
    percent,
    yuan,
)
from domain.ids import mask_pii
from store.db import SessionFactory
from store.models import Notification

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PHONE = "13812345678"
ID_NUMBER = "410102198503120030"
MAX_SMS_CHARS = 130

# Realistic, long-ish values: a four-character name, a long institution name.
COMMON = {"name": "欧阳明华", "loan_id": "LN-2026-000123", "institution": "示范县农村信用合作联社"}
SAMPLES: dict[str, dict[str, Any]] = {
    "application_received": {**COMMON, "amount": Decimal("150000.00")},
    "application_refused": {**COMMON, "reasons": "申请金额超过家庭年收入的50%；贷款期限超过36个月"},
    "loan_approved": {
        **COMMON,
        "amount": Decimal("148000.00"),
        "term_months": 36,
        "annual_rate": Decimal("0.0435"),
        "signing_deadline": date(2026, 12, 31),
    },
    "loan_rejected": {**COMMON, "reason": "经营现金流不足以覆盖还款，建议降低金额后重新申请"},
    "approval_lapsed": COMMON,
    "loan_disbursed": {
        **COMMON,
        "amount": Decimal("148000.00"),
        "settlement_account_masked": "****5678",
        "installments": 36,
        "first_due_date": date(2026, 12, 21),
        "first_payment": Decimal("4381.97"),
        "maturity_date": date(2029, 11, 21),
    },
    "application_withdrawn": COMMON,
    "staff_task_late": {
        "loan_id": "LN-2026-000123",
        "tasks": ["贷前调查", "审查"],
        "deadline": date(2026, 3, 31),
    },
    "interest_reminder": {
        **COMMON,
        "due_date": date(2027, 1, 21),
        "payment": Decimal("4381.97"),
        "installment": 2,
        "installments": 36,
        "settlement_account_masked": "****5678",
    },
    "maturity_notice": {
        **COMMON,
        "due_date": date(2027, 11, 21),
        "payment": Decimal("150652.50"),
        "settlement_account_masked": "****5678",
    },
    "installment_collected": {
        **COMMON,
        "amount": Decimal("4381.97"),
        "due_date": date(2026, 12, 21),
        "next_due_date": date(2027, 1, 21),
        "next_payment": Decimal("4381.97"),
    },
    "installment_unpaid": {
        **COMMON,
        "collected": Decimal("1200.00"),
        "unpaid": Decimal("3181.97"),
        "due_date": date(2026, 12, 21),
        "settlement_account_masked": "****5678",
    },
    "payment_received": {
        **COMMON,
        "amount": Decimal("3000.00"),
        "arrears": Decimal("181.97"),
        "settlement_account_masked": "****5678",
    },
    "loan_settled": {**COMMON, "closed_on": date(2029, 11, 21)},
    "overdue_reminder": {
        **COMMON,
        "arrears": Decimal("4412.35"),
        "overdue_since": date(2026, 12, 22),
    },
    "guarantor_notice": {
        **COMMON,
        "guarantor": "司马相如",
        "arrears": Decimal("4412.35"),
        "overdue_since": date(2026, 12, 22),
    },
}


def test_every_template_has_a_sample() -> None:
    names = {p.name.removesuffix(".txt.j2") for p in (TEMPLATES / "sms").glob("*.txt.j2")}
    assert names == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_template_renders_short_and_masked(name: str) -> None:
    text = TemplateRenderer(TEMPLATES).render(name, SAMPLES[name])
    assert text == text.strip() and "{" not in text
    assert len(text) <= MAX_SMS_CHARS, f"{name}: {len(text)} chars: {text}"
    assert mask_pii(text) == text
    assert PHONE not in text and ID_NUMBER not in text
    if name != "staff_task_late":
        assert text.endswith("【示范县农村信用合作联社】")


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_template_missing_variable_raises(name: str) -> None:
    renderer = TemplateRenderer(TEMPLATES)
    for missing in SAMPLES[name]:
        context = {k: v for k, v in SAMPLES[name].items() if k != missing}
        with pytest.raises(UndefinedError):
            renderer.render(name, context)


def test_optional_parts_follow_the_amounts_even_as_json_strings() -> None:
    renderer = TemplateRenderer(TEMPLATES)
    unpaid = {**SAMPLES["installment_unpaid"], "collected": "0.00"}
    assert "已扣收" not in renderer.render("installment_unpaid", unpaid)
    assert "已扣收1,200.00元" in renderer.render(
        "installment_unpaid", SAMPLES["installment_unpaid"]
    )
    settled = {**SAMPLES["payment_received"], "arrears": "0.00"}
    assert "仍欠" not in renderer.render("payment_received", settled)
    last = {**SAMPLES["installment_collected"], "next_due_date": None, "next_payment": None}
    assert "下期" not in renderer.render("installment_collected", last)


def test_rendered_values() -> None:
    renderer = TemplateRenderer(TEMPLATES)
    approved = renderer.render("loan_approved", SAMPLES["loan_approved"])
    assert "148,000.00元" in approved and "4.35%" in approved and "2026年12月31日" in approved
    disbursed = renderer.render("loan_disbursed", SAMPLES["loan_disbursed"])
    assert "共36期" in disbursed and "4,381.97元" in disbursed and "2029年11月21日" in disbursed
    late = renderer.render("staff_task_late", {**SAMPLES["staff_task_late"], "tasks": "审批"})
    assert "（审批）" in late


def test_context_that_crossed_json_as_strings_renders_the_same() -> None:
    renderer = TemplateRenderer(TEMPLATES)
    as_json = {
        k: str(v) if not isinstance(v, int) else v for k, v in SAMPLES["loan_approved"].items()
    }
    assert renderer.render("loan_approved", as_json) == renderer.render(
        "loan_approved", SAMPLES["loan_approved"]
    )


def test_filters() -> None:
    assert yuan(Decimal("12345.675")) == "12,345.68"
    assert yuan("3000") == "3,000.00"
    assert percent(Decimal("0.0435")) == "4.35%"
    assert percent("0.05") == "5%"
    assert date_cn(date(2026, 1, 5)) == "2026年1月5日"
    assert date_cn("2026-01-05") == "2026年1月5日"
    with pytest.raises(TypeError):
        yuan(0.1)


def test_rendering_masks_personal_data_carried_in_by_free_text() -> None:
    """rule H-3: a number typed into a name or reason is masked, and the notice still goes."""
    renderer = TemplateRenderer(TEMPLATES)
    for leak in (PHONE, ID_NUMBER):
        text = renderer.render(
            "application_received", {**SAMPLES["application_received"], "name": f"张{leak}"}
        )
        assert leak not in text and leak[-4:] in text


def sms(key: str, body: str = "您好【测试】") -> OutboundMessage:
    return OutboundMessage(
        idempotency_key=key, loan_id="L1", channel="sms", recipient=PHONE, template="t", body=body
    )


def rows(sessions: SessionFactory) -> list[Notification]:
    with sessions() as s:
        return list(s.exec(select(Notification).order_by(col(Notification.id))).all())


def test_outbox_writes_once_per_key(sessions: SessionFactory) -> None:
    notifier = OutboxNotifier(sessions)
    first = notifier.send(sms("k1"))
    again = notifier.send(sms("k1"))
    other = notifier.send(sms("k2"))
    assert not first.already_sent and again.already_sent and not other.already_sent
    assert again.notification_id == first.notification_id
    stored = rows(sessions)
    assert [r.idempotency_key for r in stored] == ["k1", "k2"]
    assert stored[0].status == "queued"
    assert stored[0].recipient == PHONE
    assert stored[0].recipient_masked == "138****5678"


def test_outbox_refuses_unmasked_body(sessions: SessionFactory) -> None:
    with pytest.raises(UnmaskedPersonalData):
        OutboxNotifier(sessions).send(sms("k1", body=f"身份证{ID_NUMBER}"))
    assert rows(sessions) == []


def test_send_sms_activity_retried_sends_once(sessions: SessionFactory) -> None:
    activities = NotificationActivities(OutboxNotifier(sessions), TemplateRenderer(TEMPLATES))
    inp = SendSmsInput(
        idempotency_key="loan/L1/sms/loan_disbursed/r0",
        loan_id="L1",
        phone=PHONE,
        template="loan_disbursed",
        context=SAMPLES["loan_disbursed"],
    )
    env = ActivityEnvironment()
    results = [env.run(activities.send_sms, inp) for _ in range(3)]
    assert [r.already_sent for r in results] == [False, True, True]
    [row] = rows(sessions)
    assert row.channel == "sms" and row.template == "loan_disbursed"
    assert row.body.startswith("欧阳明华您好") and PHONE not in row.body


def test_send_sms_with_missing_variable_is_not_retried(sessions: SessionFactory) -> None:
    activities = NotificationActivities(OutboxNotifier(sessions), TemplateRenderer(TEMPLATES))
    inp = SendSmsInput(
        idempotency_key="k", loan_id="L1", phone=PHONE, template="loan_approved", context=COMMON
    )
    with pytest.raises(ApplicationError) as info:
        ActivityEnvironment().run(activities.send_sms, inp)
    assert info.value.non_retryable
    assert rows(sessions) == []


def test_notify_staff_one_message_per_user(sessions: SessionFactory) -> None:
    activities = NotificationActivities(OutboxNotifier(sessions), TemplateRenderer(TEMPLATES))
    inp = NotifyStaffInput(
        idempotency_key="loan/L1/sla-breach",
        loan_id="L1",
        usernames=["zhang.wei", "li.na", "zhang.wei"],
        template="staff_task_late",
        context=SAMPLES["staff_task_late"],
    )
    env = ActivityEnvironment()
    assert env.run(activities.notify_staff, inp) == 2
    assert env.run(activities.notify_staff, inp) == 0
    more = inp.model_copy(update={"usernames": ["li.na", "wang.fang"]})
    assert env.run(activities.notify_staff, more) == 1
    stored = rows(sessions)
    assert sorted(r.idempotency_key for r in stored) == [
        "loan/L1/sla-breach:li.na",
        "loan/L1/sla-breach:wang.fang",
        "loan/L1/sla-breach:zhang.wei",
    ]
    assert {r.channel for r in stored} == {"staff"}
    assert {r.recipient_masked for r in stored} == {"li.na", "wang.fang", "zhang.wei"}
