"""Notification activities: render a template, queue it once per idempotency key."""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateError
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.notifications import (
    NotificationResult,
    Notifier,
    OutboundMessage,
    TemplateRenderer,
)


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
    """A notice printed for the borrower (书面通知), kept in the outbox for the clerk."""

    idempotency_key: str = Field(min_length=1, max_length=200)
    loan_id: str
    recipient: str = Field(min_length=1, max_length=64)  # the addressee's name
    template: str
    context: dict[str, Any] = Field(default_factory=dict)


class NotificationActivities:
    def __init__(self, notifier: Notifier, renderer: TemplateRenderer) -> None:
        self._notifier = notifier
        self._renderer = renderer

    def _render(self, template: str, context: dict[str, Any], folder: str = "sms") -> str:
        try:
            return self._renderer.render(template, context, folder)
        except (TemplateError, ValueError, TypeError) as exc:
            # A missing variable or unmasked data will not fix itself on retry.
            raise ApplicationError(
                f"template {template}: {exc}", type="TemplateError", non_retryable=True
            ) from exc

    @activity.defn
    def send_sms(self, inp: SendSmsInput) -> NotificationResult:
        body = self._render(inp.template, inp.context)
        return self._notifier.send(
            OutboundMessage(
                idempotency_key=inp.idempotency_key,
                loan_id=inp.loan_id,
                channel="sms",
                recipient=inp.phone,
                template=inp.template,
                body=body,
            )
        )

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
        """A printed notice (P-7 settlement certificate, ...), queued once per key."""
        body = self._render(inp.template, inp.context, "print")
        return self._notifier.send(
            OutboundMessage(
                idempotency_key=inp.idempotency_key,
                loan_id=inp.loan_id,
                channel="print",
                recipient=inp.recipient,
                template=inp.template,
                body=body,
            )
        )
