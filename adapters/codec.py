"""Payload encryption (H-3): what Temporal stores of a loan is ciphertext.

Every workflow, activity, update and query payload is encrypted with AES-256-GCM before it
leaves the process, so the Temporal server and its database never hold a borrower's ID or
phone number in clear. The key id travels in the payload's metadata, so keys rotate: new
payloads use the active key, old ones decode with whichever key wrote them. Payloads
written before encryption was switched on pass through unchanged.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


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
    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise ValueError(f"the active payload key {active_key_id!r} is not among the keys")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active = active_key_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._active].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: self._active.encode()},
            data=nonce + sealed,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was switched on
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKey(f"no payload key {key_id!r} here; add it to LOANFLOW_PAYLOAD_KEYS")
        data = payload.data
        return Payload.FromString(cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None))


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The pydantic data converter, encrypting when a codec is given."""
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)
