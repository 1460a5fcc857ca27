"""A stand-in SMS gateway (短信网关桩) for development, demos and tests.

It takes the POSTs ``HttpSmsGateway`` makes, logs each text with the phone masked (H-3),
accepts a message id once (a repeat is answered as before and dropped), and can be told
to fail the first N requests of every message, answering ``fail_status`` after
``fail_delay`` seconds (a delay longer than the client's timeout makes it time out).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from domain.ids import mask_phone, mask_pii

log = logging.getLogger("loanflow.sms_stub")

_PHONE = re.compile(r"^\+?[0-9]{6,15}$")


@dataclass(frozen=True)
class StubSms:
    message_id: str
    phone: str
    text: str
    gateway_id: str


class StubSmsGateway:
    """``with StubSmsGateway(fail_first=2) as stub: ... stub.url ... stub.accepted``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        fail_first: int = 0,
        fail_status: int = 503,
        fail_delay: float = 0.0,
    ) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.fail_delay = fail_delay
        self.accepted: dict[str, StubSms] = {}  # by message id, each once
        self.requests: Counter[str] = Counter()  # POSTs received per message id
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/sms"

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Until Ctrl-C (KeyboardInterrupt) or ``stop()``."""
        try:
            self._server.serve_forever(poll_interval)
        finally:
            self._server.server_close()

    def start(self) -> StubSmsGateway:
        """Serves on a thread of its own (tests); ``stop()`` returns at once."""
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()  # serve_forever returns and closes the socket
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> StubSmsGateway:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def receive(self, payload: Any) -> tuple[int, dict[str, Any], float]:
        """The answer to one POST: status, JSON body and how long to wait before it."""
        if not isinstance(payload, dict):
            return 400, {"error": "expected a JSON object"}, 0.0
        message_id, phone, text = (payload.get(k) for k in ("message_id", "phone", "text"))
        if not (isinstance(message_id, str) and message_id):
            return 400, {"error": "message_id missing"}, 0.0
        if not (isinstance(phone, str) and _PHONE.match(phone)):
            return 400, {"error": "phone invalid"}, 0.0
        if not (isinstance(text, str) and text):
            return 400, {"error": "text missing"}, 0.0
        with self._lock:
            self.requests[message_id] += 1
            known = self.accepted.get(message_id)
            if known is not None:
                log.info("SMS %s to %s: duplicate, dropped", message_id, mask_phone(phone))
                return 200, {"id": known.gateway_id, "duplicate": True}, 0.0
            if self.requests[message_id] <= self.fail_first:
                log.info(
                    "SMS %s to %s: failing request %d of %d with %d",
                    message_id,
                    mask_phone(phone),
                    self.requests[message_id],
                    self.fail_first,
                    self.fail_status,
                )
                return self.fail_status, {"error": "told to fail"}, self.fail_delay
            sms = StubSms(message_id, phone, text, gateway_id=f"stub-{len(self.accepted) + 1}")
            self.accepted[message_id] = sms
        log.info("SMS %s to %s: %s", message_id, mask_phone(phone), mask_pii(text))
        return 200, {"id": sms.gateway_id, "duplicate": False}, 0.0


def _handler(stub: StubSmsGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            length = int(self.headers.get("Content-Length") or 0)
            try:
                payload = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                payload = None
            status, body, delay = stub.receive(payload)
            if delay:
                time.sleep(delay)
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and went away

        def log_message(self, format: str, *args: Any) -> None:
            pass  # receive() logs each message, masked; no client addresses

    return Handler
