"""Keeps the run command's parts running: each is a child process, restarted when it exits.

A part that exits is started again after a wait that doubles (1 s, 2 s, ... at most 30 s)
and starts over at 1 s once the part has stayed up a while; each exit and restart is
logged with the exit code and the new pid. A part that cannot even start the first time
stops the run, as a wrong setting would fail the same way on every restart. SIGINT or
SIGTERM stops every part, the newest (last started) first.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger("loanflow.supervisor")

FIRST_DELAY_SECONDS = 1.0
LONGEST_DELAY_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0  # up this long: its next restart waits FIRST_DELAY again
STOP_TIMEOUT_SECONDS = 15.0
READY_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.2
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Part:
    """One child: its command, its environment (None: ours) and the port it answers on
    once started (the next part starts only then)."""

    name: str
    command: Sequence[str]
    env: Mapping[str, str] | None = None
    port: tuple[str, int] | None = None


class StartFailed(Exception):
    """A part exited, or never answered on its port, when first started."""


@dataclass
class _Child:
    part: Part
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    delay: float = FIRST_DELAY_SECONDS
    restart_at: float | None = None

    def start(self, now: float) -> None:
        # Its own session: a terminal's Ctrl-C reaches only the supervisor, which then
        # stops the parts in order instead of all at once.
        env = dict(self.part.env) if self.part.env is not None else None
        self.process = subprocess.Popen(self.part.command, start_new_session=True, env=env)
        self.started_at, self.restart_at = now, None
        log.info("started %s (pid %d)", self.part.name, self.process.pid)

    def exited(self) -> int | None:
        if self.process is None or self.restart_at is not None:
            return None
        return self.process.poll()


class Supervisor:
    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts = parts
        self.stopping = False
        self._children: list[_Child] = []

    def run(self, on_started: Callable[[], None] = lambda: None) -> int:
        """Starts the parts in order, then keeps them running until SIGINT or SIGTERM.

        0 after a signal; 1 when a part could not start (every started part is stopped).
        """
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        try:
            for part in self.parts:
                self._start_first(part)
            if not self.stopping:
                on_started()
            while not self.stopping:
                self._watch()
                time.sleep(POLL_SECONDS)
            log.info("stopping")
            return 0
        except StartFailed as exc:
            log.error("%s", exc)
            return 1
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _start_first(self, part: Part) -> None:
        if self.stopping:
            return
        if part.port is not None and _answers(*part.port):
            host, port = part.port
            raise StartFailed(f"{part.name}: {host}:{port} is already taken by another program")
        child = _Child(part)
        self._children.append(child)
        child.start(time.monotonic())
        if part.port is not None:
            self._wait_until_ready(child, *part.port)

    def _wait_until_ready(self, child: _Child, host: str, port: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not self.stopping:
            code = child.exited()
            if code is not None:
                raise StartFailed(f"{child.part.name} exited with code {code} while starting")
            if _answers(host, port):
                return
            if time.monotonic() > deadline:
                raise StartFailed(
                    f"{child.part.name}: nothing answered on {host}:{port} "
                    f"within {READY_TIMEOUT_SECONDS:.0f}s"
                )
            time.sleep(POLL_SECONDS)

    def _watch(self) -> None:
        now = time.monotonic()
        for child in self._children:
            if child.restart_at is not None and now >= child.restart_at:
                self._restart(child, now)
                continue
            code = child.exited()
            if code is None:
                continue
            if now - child.started_at >= STABLE_AFTER_SECONDS:
                child.delay = FIRST_DELAY_SECONDS
            assert child.process is not None
            log.warning(
                "%s (pid %d) exited with code %d; restarting in %gs",
                child.part.name,
                child.process.pid,
                code,
                child.delay,
            )
            child.restart_at = now + child.delay
            child.delay = min(child.delay * 2, LONGEST_DELAY_SECONDS)

    def _restart(self, child: _Child, now: float) -> None:
        try:
            child.start(now)
        except OSError as exc:  # e.g. the binary removed under us: try again later
            log.error("could not restart %s: %s", child.part.name, exc)
            child.restart_at = now + child.delay
            child.delay = min(child.delay * 2, LONGEST_DELAY_SECONDS)

    def _stop_all(self) -> None:
        for child in reversed(self._children):
            process = child.process
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.part.name)
                process.kill()
                process.wait()


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
