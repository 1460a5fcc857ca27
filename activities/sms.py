"""SMS delivery activities (短信投递): hand a queued outbox row to the gateway, record the outcome.

Each attempt is recorded on the row (attempts, last error); a delivered row is never
posted again, however often the activity or its workflow runs. Only the row's id crosses
into Temporal: the phone number is read here, from the outbox (H-3).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.sms_gateway import SmsGateway, SmsGatewayError, SmsMessage, short_error
from store.db import SessionFactory
from store.models import Notification


class SmsRetry(BaseModel):
    """How a delivery is retried (from the settings): backoff from ``initial_interval`` up
    to ``maximum_interval``, until ``give_up_after`` has passed or, when not 0,
    ``maximum_attempts`` were made."""

    initial_interval: timedelta
    backoff_coefficient: float = Field(ge=1)
    maximum_interval: timedelta
    maximum_attempts: int = Field(ge=0)
    give_up_after: timedelta
    attempt_timeout: timedelta


class SmsDeliveryInput(BaseModel):
    """The delivery workflow's input: the outbox row, never its phone number."""

    notification_id: int
    retry: SmsRetry


class DeliverSmsInput(BaseModel):
    notification_id: int


class SmsFailureInput(BaseModel):
    notification_id: int
    # Why the workflow gave up when the last attempt could not say (it timed out).
    gave_up: str | None = None


class SmsDeliveryResult(BaseModel):
    status: Literal["delivered", "failed"]
    attempts: int


class SmsActivities:
    def __init__(self, sessions: SessionFactory, gateway: SmsGateway | None) -> None:
        self._sessions = sessions
        self._gateway = gateway  # None: no gateway configured, nothing can be delivered

    @activity.defn
    def deliver_sms(self, inp: DeliverSmsInput) -> SmsDeliveryResult:
        """Posts the row's text once per attempt; ``attempts`` counts the posts."""
        with self._sessions() as session:
            row = _sms_row(session, inp.notification_id)
            if row.status == "delivered":
                return SmsDeliveryResult(status="delivered", attempts=row.attempts)
            if self._gateway is None:
                row.last_error = "no SMS gateway configured"
                session.commit()
                raise ApplicationError(row.last_error, type="SmsGatewayUnavailable")
            row.attempts += 1
            session.commit()
            message = SmsMessage(message_id=row.idempotency_key, phone=row.recipient, text=row.body)
        try:
            receipt = self._gateway.send(message)
        except SmsGatewayError as exc:
            with self._sessions() as session:
                _sms_row(session, inp.notification_id).last_error = str(exc)
                session.commit()
            raise ApplicationError(
                str(exc),
                type="SmsGatewayUnavailable" if exc.retryable else "SmsRejected",
                non_retryable=not exc.retryable,
            ) from exc
        with self._sessions() as session:
            row = _sms_row(session, inp.notification_id)
            row.status = "delivered"
            row.gateway_message_id = receipt.gateway_message_id
            row.delivered_at = datetime.now(UTC)
            row.last_error = None
            session.commit()
            return SmsDeliveryResult(status="delivered", attempts=row.attempts)

    @activity.defn
    def record_sms_failure(self, inp: SmsFailureInput) -> SmsDeliveryResult:
        """The delivery gave up: the row is ``failed``, with its last error (delivered stays)."""
        with self._sessions() as session:
            row = _sms_row(session, inp.notification_id)
            if row.status == "delivered":
                return SmsDeliveryResult(status="delivered", attempts=row.attempts)
            row.status = "failed"
            if inp.gave_up:
                last = f"{inp.gave_up}; {row.last_error}" if row.last_error else inp.gave_up
                row.last_error = short_error(last)
            session.commit()
            return SmsDeliveryResult(status="failed", attempts=row.attempts)


def _sms_row(session: Session, notification_id: int) -> Notification:
    row = session.get(Notification, notification_id)
    if row is None or row.channel != "sms":
        raise ApplicationError(
            f"no SMS in the outbox with id {notification_id}",
            type="SmsNotFound",
            non_retryable=True,
        )
    return row
