"""The SMS gateway port (短信网关) and its HTTP adapter.

The gateway receives ``{message_id, phone, text}`` as JSON; ``message_id`` is the outbox
row's idempotency key, so a gateway that sees a message again drops it. A 2xx answer
means accepted (its JSON may carry the gateway's own ``id``). Timeouts, connection errors,
5xx and 429 may pass and are retried; any other answer is final.
"""

from __future__ import annotations

import abc

import httpx
from pydantic import BaseModel, Field

from domain.ids import mask_pii

# What of a gateway's answer is kept in an error: enough to tell what it said, never a
# whole page (the outbox column holds 500, and the text ends up in Temporal's history).
ERROR_TEXT_LIMIT = 200


class SmsMessage(BaseModel):
    message_id: str = Field(min_length=1, max_length=200)
    phone: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1)


class SmsReceipt(BaseModel):
    gateway_message_id: str | None = None


class SmsGatewayError(Exception):
    """The gateway did not take the message; ``retryable`` says whether it may later."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(short_error(reason))
        self.retryable = retryable


def short_error(text: str) -> str:
    """One masked line of at most ERROR_TEXT_LIMIT characters (H-3)."""
    line = " ".join(mask_pii(text).split())
    return line if len(line) <= ERROR_TEXT_LIMIT else line[: ERROR_TEXT_LIMIT - 1] + "…"


class SmsGateway(abc.ABC):
    @abc.abstractmethod
    def send(self, msg: SmsMessage) -> SmsReceipt:
        """Hands the message over; raises SmsGatewayError when the gateway did not take it."""


class HttpSmsGateway(SmsGateway):
    def __init__(self, url: str, timeout_seconds: float) -> None:
        self._url = url
        self._timeout = httpx.Timeout(timeout_seconds)

    def send(self, msg: SmsMessage) -> SmsReceipt:
        try:
            response = httpx.post(self._url, json=msg.model_dump(), timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise SmsGatewayError(
                f"gateway timed out ({type(exc).__name__})", retryable=True
            ) from exc
        except httpx.TransportError as exc:
            raise SmsGatewayError(f"gateway unreachable: {exc}", retryable=True) from exc
        status = response.status_code
        if response.is_success:
            return SmsReceipt(gateway_message_id=_gateway_id(response))
        reason = f"gateway answered {status}: {response.text}"
        raise SmsGatewayError(reason, retryable=status >= 500 or status == 429)


def _gateway_id(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    found = body.get("id") if isinstance(body, dict) else None
    return str(found)[:64] if found not in (None, "") else None
