"""Payload encryption (H-3): what Temporal stores of a loan is ciphertext.

Every workflow, activity, update and query payload is encrypted with AES-256-GCM before it
leaves the process, so the Temporal server and its database never hold a borrower's ID or
phone number in clear. The key id travels in the payload's metadata, so keys rotate: new
payloads use the active key, old ones decode with whichever key wrote them.

The key is also the deployment's credential (H-3, issue 9): a payload that is not ours is
never read as data. A plaintext one (someone with the Temporal port but not the key: the
CLI, the Web UI) is marked refused, so a step carrying it is rejected and a workflow
started with it fails at once with the reason, and nothing else happens. One sealed with a
key this process does not hold, or altered, is marked unreadable: a step carrying it is
rejected; in a loan's own history (a key left out of the settings) the workflow task waits
and retries until the key is back, so no loan is failed for a configuration mistake.
Plaintext is read only when replaying or auditing histories recorded before encryption
(``allow_plaintext``).
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter, EncodingPayloadConverter, PayloadCodec
from temporalio.exceptions import ApplicationError

logger = logging.getLogger(__name__)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
# What a payload that is not ours becomes: never data, always an error when read.
REFUSED = b"binary/refused-plaintext"
UNREADABLE = b"binary/unreadable"
PLAINTEXT_REFUSED = (
    "rule H-3: refused: a payload not encrypted with this deployment's key; steps are taken "
    "through the loanflow API only"
)


class UnknownKey(ValueError):
    """A payload names a key this process does not hold."""


def parse_keys(spec: str) -> dict[str, bytes]:
    """``"2026a:<base64 32 bytes>,2025b:<...>"`` → {key id: key}; every key is AES-256."""
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id:
            raise ValueError(f"payload key {item[:12]}...: expected '<key id>:<base64 key>'")
        key = base64.b64decode(encoded, validate=True)
        if len(key) != 32:
            raise ValueError(f"payload key {key_id}: {len(key)} bytes, AES-256 needs 32")
        keys[key_id] = key
    return keys


class EncryptionCodec(PayloadCodec):
    def __init__(
        self,
        keys: Mapping[str, bytes],
        active_key_id: str,
        *,
        plaintext_history: bool = True,
        allow_plaintext: bool = False,
    ) -> None:
        if active_key_id not in keys:
            raise ValueError(f"the active payload key {active_key_id!r} is not among the keys")
        self._keys = dict(keys)
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active = active_key_id
        self._plaintext_history = plaintext_history
        self._allow_plaintext = allow_plaintext

    def reading_old_histories(self) -> EncryptionCodec:
        """The same keys, also reading plaintext where the deployment has histories recorded
        before encryption: for replaying and auditing them, never for a worker or a step."""
        return EncryptionCodec(
            self._keys,
            self._active,
            plaintext_history=self._plaintext_history,
            allow_plaintext=self._plaintext_history,
        )

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) for p in payloads]

    def open(self, payload: Payload) -> Payload:
        """Decrypt one payload or raise: ``UnknownKey``, or ``InvalidTag`` when altered."""
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKey(f"no payload key {key_id!r} here; add it to LOANFLOW_PAYLOAD_KEYS")
        data = payload.data
        return Payload.FromString(cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None))

    def _encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._active].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: self._active.encode()},
            data=nonce + sealed,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            if self._allow_plaintext:
                return payload
            logger.warning("refused a plaintext payload (%d bytes)", len(payload.data))
            return Payload(metadata={"encoding": REFUSED})
        try:
            return self.open(payload)
        except (UnknownKey, InvalidTag) as exc:
            logger.error("unreadable payload: %s", exc or "altered, or sealed with another key")
            return Payload(metadata={"encoding": UNREADABLE})


class _RefusedConverter(EncodingPayloadConverter):
    """Reads a plaintext payload as a non-retryable refusal: the step is rejected, a
    workflow started with it fails at once, with the reason (never a task retried forever)."""

    @property
    def encoding(self) -> str:
        return REFUSED.decode()

    def to_payload(self, value: Any) -> Payload | None:
        return None

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        raise ApplicationError(PLAINTEXT_REFUSED, type="PayloadRefused", non_retryable=True)


class _UnreadableConverter(EncodingPayloadConverter):
    """Reads an unreadable payload as an ordinary error: a step carrying it is rejected; in
    a loan's own history the task is retried until the missing key is configured."""

    @property
    def encoding(self) -> str:
        return UNREADABLE.decode()

    def to_payload(self, value: Any) -> Payload | None:
        return None

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        raise ValueError(
            "rule H-3: a payload sealed with a key this deployment does not hold, or altered"
        )


class GuardedPayloadConverter(PydanticPayloadConverter):
    """The pydantic converter, plus the two markers the codec gives payloads not ours."""

    def __init__(self) -> None:
        super().__init__()
        self._set_converters(
            *self.converters.values(), _RefusedConverter(), _UnreadableConverter()
        )


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The pydantic data converter, encrypting when a codec is given."""
    return DataConverter(payload_converter_class=GuardedPayloadConverter, payload_codec=codec)


def history_converter(converter: DataConverter) -> DataConverter:
    """``converter`` for reading recorded histories (replay, audit): see
    ``EncryptionCodec.reading_old_histories``."""
    codec = converter.payload_codec
    if not isinstance(codec, EncryptionCodec):
        return converter
    return dataclasses.replace(converter, payload_codec=codec.reading_old_histories())
