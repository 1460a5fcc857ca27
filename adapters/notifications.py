"""The notification port, its embedded default (an outbox table) and the SMS template renderer.

Messages are written once per idempotency key, so a retried activity never sends
twice. No full resident ID or phone number ever reaches a message body (rule H-3).
"""

from __future__ import annotations

import abc
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from domain.ids import mask_id_number, mask_phone, mask_pii
from domain.money import to_cents
from store.db import SessionFactory
from store.models import Notification

Channel = Literal["sms", "staff", "print"]


class OutboundMessage(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=200)
    loan_id: str | None
    channel: Channel
    recipient: str = Field(min_length=1, max_length=64)  # phone, staff username or address
    template: str = Field(max_length=64)
    body: str


class NotificationResult(BaseModel):
    notification_id: int
    already_sent: bool


class UnmaskedPersonalData(ValueError):
    """A message body contains a full resident ID or mobile number (H-3)."""


def ensure_masked(text: str) -> None:
    if mask_pii(text) != text:
        raise UnmaskedPersonalData("message contains an unmasked resident ID or phone number")


class Notifier(abc.ABC):
    @abc.abstractmethod
    def send(self, msg: OutboundMessage) -> NotificationResult: ...


def masked_recipient(channel: Channel, recipient: str) -> str:
    if channel == "sms":
        return mask_phone(recipient)
    if channel == "staff":
        return recipient  # a username is not personal data
    return mask_pii(recipient)


class OutboxNotifier(Notifier):
    """Queues messages in the notifications table; a relay (or a clerk, for print) sends them."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def send(self, msg: OutboundMessage) -> NotificationResult:
        ensure_masked(msg.body)
        with self._sessions() as session:
            existing = self._existing(session, msg.idempotency_key)
            if existing is not None:
                return existing
            row = Notification(
                idempotency_key=msg.idempotency_key,
                loan_id=msg.loan_id,
                channel=msg.channel,
                recipient=msg.recipient,
                recipient_masked=masked_recipient(msg.channel, msg.recipient),
                template=msg.template,
                body=msg.body,
                status="queued",
            )
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                # A concurrent retry queued the same key first.
                session.rollback()
                existing = self._existing(session, msg.idempotency_key)
                if existing is None:
                    raise
                return existing
            assert row.id is not None
            return NotificationResult(notification_id=row.id, already_sent=False)

    @staticmethod
    def _existing(session: Session, key: str) -> NotificationResult | None:
        row = session.exec(select(Notification).where(Notification.idempotency_key == key)).first()
        if row is None or row.id is None:
            return None
        return NotificationResult(notification_id=row.id, already_sent=True)


# Template context crosses the workflow boundary as JSON, so Decimals and dates may
# arrive as strings: the filters accept both.


def _decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        raise TypeError("money is Decimal, never float")
    return Decimal(str(value))


def yuan(value: Any) -> str:
    """Decimal yuan -> "12,345.67"."""
    return f"{to_cents(_decimal(value)):,.2f}"


def percent(value: Any) -> str:
    """An annual rate as a fraction -> "4.35%"."""
    pct = _decimal(value) * 100
    return f"{pct.quantize(Decimal('0.01')).normalize():f}%"


def date_cn(value: Any) -> str:
    """A date (or ISO string) -> "2026年6月30日"."""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = value.date()
    return f"{value.year}年{value.month}月{value.day}日"


class TemplateRenderer:
    """Renders ``sms/{name}.txt.j2``; a missing variable raises."""

    def __init__(self, templates_dir: Path) -> None:
        self._env = Environment(
            loader=FileSystemLoader(str(templates_dir)),
            undefined=StrictUndefined,
            autoescape=False,  # plain-text SMS, not HTML
            keep_trailing_newline=False,
        )
        self._env.filters.update(
            yuan=yuan,
            percent=percent,
            date_cn=date_cn,
            mask_phone=mask_phone,
            mask_id=mask_id_number,
        )

    def render(self, name: str, context: dict[str, Any]) -> str:
        """The text, with any ID or phone number that free text (a name, a reason) carried
        into it masked (H-3): a text is never refused, or sent, for a staff member's typing."""
        text = self._env.get_template(f"sms/{name}.txt.j2").render(context).strip()
        return mask_pii(text)
