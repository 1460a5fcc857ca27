"""Exactly once, for the life of a loan (issue 9): the steps a loan remembers having applied.

Every human step reaches the loan's workflow as an update whose id the API makes from the
step's idempotency key and what was asked: ``<key digest>.<request fingerprint>``, sixteen
hex digits each. Within one run Temporal itself answers a repeated id with the first
result. Across runs (continue-as-new) the loan carries the ids of its last
``STEP_IDS_KEPT`` applied steps, so a repeat is still recognised: the same id is answered
from the history of the run that applied it, the same key with another request is refused.
Past the bound a key is forgotten and a repeat is judged afresh by the rules, which refuse
most steps a second time anyway (a stage has moved on, a task is closed).
"""

from __future__ import annotations

import re

STEP_IDS_KEPT = 64
DIGITS = 16
_STEP_ID = re.compile(rf"^([0-9a-f]{{{DIGITS}}})\.([0-9a-f]{{{DIGITS}}})$")


def step_id(key_digest: str, fingerprint: str) -> str:
    return f"{key_digest}.{fingerprint}"


def key_of(update_id: str) -> str | None:
    """The key digest of a step id the API made; None for any other update id."""
    match = _STEP_ID.match(update_id)
    return match[1] if match else None


def earlier_use(remembered: list[str], update_id: str) -> str | None:
    """The remembered step id that used the same key as ``update_id``, if any."""
    key = key_of(update_id)
    if key is None:
        return None
    return next((known for known in reversed(remembered) if key_of(known) == key), None)


def remember(remembered: list[str], update_id: str) -> list[str]:
    """``remembered`` with ``update_id`` added last, the oldest dropped past the bound."""
    if key_of(update_id) is None or update_id in remembered:
        return remembered
    return [*remembered, update_id][-STEP_IDS_KEPT:]
