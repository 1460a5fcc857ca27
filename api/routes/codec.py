"""The remote codec for the Temporal Web UI (H-3): decoded payloads for auditors only.

Temporal stores every payload encrypted (``adapters/codec.py``). The Web UI shows them
decoded only if this endpoint decodes them, and it does so for an auditor (or the
administrator) alone: by bearer token, or by the session cookie that the Web UI served
under ``/temporal/`` (``api/routes/temporal_ui.py``) sends with its same-origin calls to
``/codec/decode``. Anyone else sees ciphertext. The body and answer follow Temporal's
remote codec protocol: ``{"payloads": [{"metadata": {name: base64}, "data": base64}]}``.
There is no encoding endpoint: sealing a payload is for the workers and the API alone, since
a sealed step is one the loan takes as the API's (issue 9).
"""

from __future__ import annotations

from typing import Annotated

from cryptography.exceptions import InvalidTag
from fastapi import APIRouter, Depends, Request
from google.protobuf import json_format
from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payload

from adapters.codec import ENCODING, EncryptionCodec
from api.deps import PageOrBearerUser, require_roles
from api.errors import ApiError
from api.services.users import actor_for
from domain.loan import Actor, Role

router = APIRouter(prefix="/codec", tags=["codec"])

_auditor_only = require_roles(Role.AUDITOR, Role.ADMIN)


def _reading_auditor(user: PageOrBearerUser) -> Actor:
    return _auditor_only(actor_for(user))


# Decoding changes nothing, so the Web UI's session cookie is enough for it.
ReadingAuditor = Annotated[Actor, Depends(_reading_auditor)]


class Payloads(BaseModel):
    payloads: list[dict[str, object]] = Field(max_length=1000)


def _payloads(body: Payloads) -> list[Payload]:
    try:
        return [json_format.ParseDict(p, Payload()) for p in body.payloads]
    except (json_format.ParseError, ValueError) as exc:
        raise ApiError(422, f"not a Temporal payload: {exc}", field="payloads") from None


def _open(codec: EncryptionCodec, payload: Payload) -> Payload:
    """A sealed payload decrypted; any other shown as it is (the UI marks it undecoded)."""
    return codec.open(payload) if payload.metadata.get("encoding") == ENCODING else payload


def _answer(payloads: list[Payload]) -> Payloads:
    return Payloads(payloads=[json_format.MessageToDict(p) for p in payloads])


@router.post("/decode", response_model=Payloads)
async def decode(body: Payloads, request: Request, _auditor: ReadingAuditor) -> Payloads:
    """Decrypt payloads with the deployment's keys; an unknown key id is a 422."""
    codec = request.app.state.settings.payload_codec()
    try:
        return _answer([_open(codec, p) for p in _payloads(body)])
    except ValueError as exc:  # a key id this deployment does not hold
        raise ApiError(422, str(exc), field="payloads") from None
    except InvalidTag:
        raise ApiError(
            422, "a payload does not decrypt: altered, or not ours", field="payloads"
        ) from None
