"""Notification activities: render a template, queue it once per idempotency key."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateError
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.notices import (
    NoticeBook,
    NoticeKind,
    NoticeRequest,
    clerk_instruction,
    register_particulars,
)
from adapters.notifications import (
    NotificationResult,
    Notifier,
    OutboundMessage,
    TemplateRenderer,
)
from domain.sms import MAX_SMS_SEGMENTS, sms_segments

if TYPE_CHECKING:
    from workflows.sms_delivery import SmsDeliveryStarter


class SendSmsInput(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=200)
    loan_id: str | None
    phone: str
    template: str
    context: dict[str, Any] = Field(default_factory=dict)


class NotifyStaffInput(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=135)  # + ":" + username <= 200
    loan_id: str | None
    usernames: list[str]
    template: str
    context: dict[str, Any] = Field(default_factory=dict)


class IssueNoticeInput(BaseModel):
    """An official notice the workflow issues (书面通知): ``template`` is its kind, ``recipient``
    its addressee, ``context`` its figures (the D-2 round key as ``notice_number``)."""

    idempotency_key: str = Field(min_length=1, max_length=200)
    loan_id: str
    recipient: str = Field(min_length=1, max_length=64)  # the addressee's name
    template: str
    context: dict[str, Any] = Field(default_factory=dict)


class NotificationActivities:
    def __init__(
        self,
        notifier: Notifier,
        renderer: TemplateRenderer,
        sms_delivery: SmsDeliveryStarter | None = None,
        notices: NoticeBook | None = None,
    ) -> None:
        self._notifier = notifier
        self._renderer = renderer
        self._sms_delivery = sms_delivery  # None: no gateway, texts stay queued
        self._notices = notices  # None: issue_notice is not wired (the worker wires it)

    def _render(self, template: str, context: dict[str, Any]) -> str:
        try:
            return self._renderer.render(template, context)
        except (TemplateError, ValueError, TypeError) as exc:
            # A missing variable or unmasked data will not fix itself on retry.
            raise ApplicationError(
                f"template {template}: {exc}", type="TemplateError", non_retryable=True
            ) from exc

    @activity.defn
    def send_sms(self, inp: SendSmsInput) -> NotificationResult:
        """Queues the text once per key, then starts its delivery (once per row): the loan
        goes on at once, the delivery workflow retries the gateway on its own."""
        body = self._render(inp.template, inp.context)
        segments = sms_segments(body)
        if segments > MAX_SMS_SEGMENTS:
            raise ApplicationError(
                f"template {inp.template}: {segments} SMS segments, at most {MAX_SMS_SEGMENTS}",
                type="TemplateError",
                non_retryable=True,
            )
        result = self._notifier.send(
            OutboundMessage(
                idempotency_key=inp.idempotency_key,
                loan_id=inp.loan_id,
                channel="sms",
                recipient=inp.phone,
                template=inp.template,
                body=body,
            )
        )
        if self._sms_delivery is not None:
            self._sms_delivery.start(result.notification_id, inp.idempotency_key)
        return result

    @activity.defn
    def notify_staff(self, inp: NotifyStaffInput) -> int:
        """One message per username; returns how many were newly queued."""
        body = self._render(inp.template, inp.context)
        new = 0
        for username in sorted(set(inp.usernames)):
            result = self._notifier.send(
                OutboundMessage(
                    idempotency_key=f"{inp.idempotency_key}:{username}",
                    loan_id=inp.loan_id,
                    channel="staff",
                    recipient=username,
                    template=inp.template,
                    body=body,
                )
            )
            new += not result.already_sent
        return new

    @activity.defn
    def issue_notice(self, inp: IssueNoticeInput) -> NotificationResult:
        """The official notice (D-2/D-3 overdue notice with its receipt slip, P-7 settlement
        certificate), numbered by the loan's branch and kept by the NoticeBook, then a print
        row in the outbox telling the clerk its number; each once per key."""
        if self._notices is None:
            raise ApplicationError("no notice book wired", type="NoticeError", non_retryable=True)
        try:
            request = self._notice_request(inp)
            notice, _ = self._notices.issue(request)
        except (TemplateError, ValueError, TypeError, KeyError) as exc:
            # A missing variable, branch or register line will not fix itself on retry.
            raise ApplicationError(
                f"notice {inp.template}: {exc}", type="NoticeError", non_retryable=True
            ) from exc
        return self._notifier.send(
            OutboundMessage(
                idempotency_key=inp.idempotency_key,
                loan_id=inp.loan_id,
                channel="print",
                recipient=inp.recipient,
                template=inp.template,
                body=clerk_instruction(notice),
            )
        )

    def _notice_request(self, inp: IssueNoticeInput) -> NoticeRequest:
        assert self._notices is not None
        record = self._notices.register_line(inp.loan_id)
        if record is None:
            raise ValueError(f"loan {inp.loan_id} is not in the register")
        kind = NoticeKind(inp.template)
        overdue = kind is NoticeKind.OVERDUE_NOTICE
        # The day the workflow issued it on (its clock, not the activity's).
        issued_on = inp.context["issued_on" if overdue else "closed_on"]
        return NoticeRequest(
            idempotency_key=inp.idempotency_key,
            kind=kind,
            branch_code=record.branch_code,
            loan_id=inp.loan_id,
            addressee=inp.recipient,
            issued_on=date.fromisoformat(str(issued_on)[:10]),
            issued_by="workflow",
            round_key=str(inp.context["notice_number"]) if overdue else None,
            context={**register_particulars(record), **inp.context},
        )
