"""Repeated failed sign-ins are slowed (issue 4): a lock-out that doubles, per username.

Kept in the API process: with several API processes behind a balancer each counts on its
own, which still bounds guessing to a few tries per minute per process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

FREE_FAILURES = 3  # failures that cost nothing; the next one starts the first wait
FIRST_WAIT_SECONDS = 2.0
LONGEST_WAIT_SECONDS = 300.0


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class LoginThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, username: str) -> float:
        """How long this username must still wait before another try (0: it may try)."""
        with self._lock:
            failures = self._failures.get(username.casefold())
            if failures is None:
                return 0.0
            return max(0.0, failures.locked_until - self._clock())

    def failed(self, username: str) -> None:
        with self._lock:
            failures = self._failures.setdefault(username.casefold(), _Failures())
            failures.count += 1
            beyond = failures.count - FREE_FAILURES - 1
            if beyond >= 0:
                wait = min(FIRST_WAIT_SECONDS * 2**beyond, LONGEST_WAIT_SECONDS)
                failures.locked_until = self._clock() + wait

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username.casefold(), None)
