"""The Web UI's remote codec (H-3): auditors see decoded payloads, nobody else does."""

from __future__ import annotations

import base64

from google.protobuf import json_format
from httpx import AsyncClient
from temporalio.api.common.v1 import Payload

from settings import Settings
from tests.api.conftest import LoanApi

ID_NUMBER = "410102198503150010"
PLAIN = {
    "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
    "data": base64.b64encode(f'{{"id_number": "{ID_NUMBER}"}}'.encode()).decode(),
}


async def test_an_auditor_decodes_payloads_and_nobody_may_encode(
    loan_api: LoanApi, api_settings: Settings
) -> None:
    [sealed_payload] = await api_settings.payload_codec().encode(
        [json_format.ParseDict(PLAIN, Payload())]
    )
    sealed = json_format.MessageToDict(sealed_payload)
    assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
    assert ID_NUMBER.encode() not in base64.b64decode(sealed["data"])
    decoded = await loan_api.post("auditor1", "/codec/decode", {"payloads": [sealed]})
    assert decoded.status_code == 200, decoded.text
    assert decoded.json()["payloads"] == [PLAIN]
    # Sealing is the workers' and the API's alone: with it, anyone with Temporal's port
    # could send a step the loan would take as the API's (issue 9).
    encode = await loan_api.post("auditor1", "/codec/encode", {"payloads": [PLAIN]})
    assert encode.status_code in (404, 405)


async def test_only_auditors_may_decode(loan_api: LoanApi, http: AsyncClient) -> None:
    body = {"payloads": [PLAIN]}
    officer = await loan_api.post("officer1", "/codec/decode", body)
    assert officer.status_code == 403
    assert (await http.post("/codec/decode", json=body)).status_code == 401


async def test_a_payload_that_is_not_ours_is_a_422(loan_api: LoanApi) -> None:
    forged = {
        "metadata": {
            "encoding": base64.b64encode(b"binary/encrypted").decode(),
            "encryption-key-id": base64.b64encode(b"dev").decode(),
        },
        "data": base64.b64encode(b"\0" * 40).decode(),
    }
    refused = await loan_api.post("auditor1", "/codec/decode", {"payloads": [forged]})
    assert refused.status_code == 422 and "does not decrypt" in refused.text
    unknown = {**forged, "metadata": {**forged["metadata"], "encryption-key-id": "eA=="}}
    refused = await loan_api.post("auditor1", "/codec/decode", {"payloads": [unknown]})
    assert refused.status_code == 422 and "no payload key 'x'" in refused.text
