"""Payload encryption (H-3): AES-GCM with the key id in the payload, keys that rotate."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag
from temporalio.api.common.v1 import Payload
from temporalio.exceptions import ApplicationError

from adapters.codec import (
    ENCODING,
    KEY_ID,
    REFUSED,
    UNREADABLE,
    EncryptionCodec,
    UnknownKey,
    data_converter,
    parse_keys,
)
from settings import DEV_PAYLOAD_KEYS, Settings

ID_NUMBER = b"410102198503150010"
OLD = base64.b64encode(b"o" * 32).decode()
NEW = base64.b64encode(b"n" * 32).decode()


def payload(data: bytes = b'{"id_number": "' + ID_NUMBER + b'"}') -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


async def test_round_trip_hides_the_data_and_names_the_key() -> None:
    codec = EncryptionCodec(parse_keys(f"k1:{NEW}"), "k1")
    [sealed] = await codec.encode([payload()])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"k1"
    assert ID_NUMBER not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [payload()]
    # A fresh nonce each time: the same payload never encrypts the same way twice.
    [again] = await codec.encode([payload()])
    assert again.data != sealed.data


async def test_keys_rotate_old_payloads_still_decode() -> None:
    before = EncryptionCodec(parse_keys(f"2025:{OLD}"), "2025")
    [old] = await before.encode([payload()])
    after = EncryptionCodec(parse_keys(f"2026:{NEW},2025:{OLD}"), "2026")
    assert await after.decode([old]) == [payload()]
    [new] = await after.encode([payload()])
    assert new.metadata[KEY_ID] == b"2026"
    with pytest.raises(UnknownKey, match="2026"):
        before.open(new)


async def test_plaintext_is_refused_except_when_reading_old_histories() -> None:
    """Issue 9: the key is the credential; plaintext reaches a worker only as a refusal."""
    codec = EncryptionCodec(parse_keys(f"k1:{NEW}"), "k1")
    [marked] = await codec.decode([payload()])
    assert marked.metadata["encoding"] == REFUSED and marked.data == b""
    converter = data_converter(codec)
    with pytest.raises(ApplicationError, match="H-3") as refused:
        converter.payload_converter.from_payloads([marked])
    assert refused.value.non_retryable and refused.value.type == "PayloadRefused"
    # Replaying or auditing a history recorded before encryption reads its plaintext ...
    assert await codec.reading_old_histories().decode([payload()]) == [payload()]
    # ... unless the deployment says it has none.
    strict = EncryptionCodec(parse_keys(f"k1:{NEW}"), "k1", plaintext_history=False)
    [still] = await strict.reading_old_histories().decode([payload()])
    assert still.metadata["encoding"] == REFUSED


async def test_a_tampered_or_foreign_payload_is_unreadable_not_data() -> None:
    codec = EncryptionCodec(parse_keys(f"k1:{NEW}"), "k1")
    [sealed] = await codec.encode([payload()])
    sealed.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(InvalidTag):
        codec.open(sealed)
    [foreign] = await EncryptionCodec(parse_keys(f"k9:{OLD}"), "k9").encode([payload()])
    for bad in (sealed, foreign):
        [marked] = await codec.decode([bad])
        assert marked.metadata["encoding"] == UNREADABLE
        # An ordinary error, not a refusal: in a loan's own history the task waits for the key.
        with pytest.raises(ValueError, match="does not hold, or altered"):
            data_converter(codec).payload_converter.from_payloads([marked])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nokey", "expected '<key id>:<base64 key>'"),
        (f"k1:{base64.b64encode(b'short').decode()}", "AES-256 needs 32"),
    ],
)
def test_malformed_keys_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_keys(spec)


def test_settings_refuse_a_missing_active_key_and_the_dev_key_in_production() -> None:
    with pytest.raises(ValueError, match="active payload key"):
        Settings(environment="test", payload_keys=f"k1:{NEW}", payload_key_id="k2")
    with pytest.raises(ValueError, match="development key"):
        Settings(
            environment="production",
            secret_key="a-real-secret-0123456789abcdef0123456789",
            payload_keys=DEV_PAYLOAD_KEYS,
        )
