"""Repeated failed sign-ins are slowed: a lock-out that doubles (issues 4 and 9).

Failures are counted per name *and client address*, so guessing one name's password is
slowed without keeping its owner out when they sign in from elsewhere; and per client
address across all names, so trying one password over many names is slowed as well.
A count forgives one failure for each longest wait of quiet: a busy office behind one
address is not locked out by a day's typing mistakes, and a patient guesser gets no more
tries than the longest wait allows anyway. Counts that reach zero are dropped, which bounds
the memory a client can fill with made-up names.

Kept in the API process: with several API processes behind a balancer each counts on its
own, which still bounds guessing to a few tries per minute per process. The client
address is the connection's, or the one a trusted proxy forwards (uvicorn's
``--forwarded-allow-ips``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from fastapi import Request

FREE_FAILURES = 3  # failures of one name from one client that cost nothing
CLIENT_FREE_FAILURES = 10  # failures of one client over all names that cost nothing
FIRST_WAIT_SECONDS = 2.0
LONGEST_WAIT_SECONDS = 300.0
FORGIVE_ONE_EVERY_SECONDS = LONGEST_WAIT_SECONDS
MAX_GATES = 10_000  # clients' sign-in gates kept before the idle ones are dropped

K = TypeVar("K")


@dataclass
class _Failures:
    count: int = 0
    last_failed: float = 0.0
    locked_until: float = 0.0

    def current(self, now: float) -> int:
        return max(0, self.count - int((now - self.last_failed) // FORGIVE_ONE_EVERY_SECONDS))

    def add(self, now: float, free: int) -> None:
        self.count = self.current(now) + 1
        self.last_failed = now
        beyond = self.count - free - 1
        if beyond >= 0:
            self.locked_until = now + min(FIRST_WAIT_SECONDS * 2**beyond, LONGEST_WAIT_SECONDS)


class LoginThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_name: dict[tuple[str, str], _Failures] = {}  # (name, client)
        self._by_client: dict[str, _Failures] = {}
        self._lock = threading.Lock()
        self._gates: dict[str, threading.Lock] = {}
        self._last_pruned = clock()

    @contextmanager
    def one_at_a_time(self, client: str) -> Iterator[None]:
        """A client's sign-ins, one after another from the wait check to the count, so a
        burst of guesses sent at once meets the failures of those before it."""
        with self._lock:
            if len(self._gates) > MAX_GATES:
                self._gates = {c: g for c, g in self._gates.items() if g.locked()}
            gate = self._gates.setdefault(client, threading.Lock())
        with gate:
            yield

    def wait_seconds(self, username: str, client: str) -> float:
        """How long this client must still wait before trying this name (0: it may try)."""
        now = self._clock()
        with self._lock:
            found = (self._by_name.get((username.casefold(), client)), self._by_client.get(client))
            return max([0.0, *(f.locked_until - now for f in found if f is not None)])

    def failed(self, username: str, client: str) -> None:
        now = self._clock()
        with self._lock:
            self._forget_stale(now)
            self._by_name.setdefault((username.casefold(), client), _Failures()).add(
                now, FREE_FAILURES
            )
            self._by_client.setdefault(client, _Failures()).add(now, CLIENT_FREE_FAILURES)

    def succeeded(self, username: str, client: str) -> None:
        """Clears this name's count at this client; the client's count across names stays,
        so someone spraying names cannot wipe it by signing in to an account of their own."""
        with self._lock:
            self._by_name.pop((username.casefold(), client), None)

    def _forget_stale(self, now: float) -> None:
        if now - self._last_pruned < FORGIVE_ONE_EVERY_SECONDS:
            return
        self._last_pruned = now
        _drop_stale(self._by_name, now)
        _drop_stale(self._by_client, now)


def _drop_stale(counts: dict[K, _Failures], now: float) -> None:
    for key in [k for k, f in counts.items() if f.current(now) == 0]:
        del counts[key]


def client_address(request: Request) -> str:
    """The connection's address, or the one a trusted proxy forwarded."""
    return request.client.host if request.client else "unknown"
