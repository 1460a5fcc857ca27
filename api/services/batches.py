"""Steps over many loans (a handover), taken once per idempotency key (issue 9).

Each loan's own step is exactly once already (``api/services/idempotency.py``); what a
resend would change is the list of loans, which the first request has moved on. So the first
request claims the key, does the work and keeps its answer (``batch_requests``); a resend,
or one of many sent at once, answers with it. A key whose first request never finished (its
process died) is taken over after ``ABANDONED_AFTER``: the loans' steps are each once still.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from store.models import BatchRequest

Answer = TypeVar("Answer", bound=BaseModel)

ABANDONED_AFTER = timedelta(seconds=60)
POLL_SECONDS = 0.2


async def answer_once(
    session: Session,
    username: str,
    key: str,
    fingerprint: str,
    answer_type: type[Answer],
    work: Callable[[], Awaitable[Answer]],
) -> Answer:
    """``work``'s answer, computed by the first request with this key and kept."""
    if not await run_in_threadpool(_claim, session, username, key, fingerprint):
        deadline = datetime.now(UTC) + ABANDONED_AFTER
        while datetime.now(UTC) < deadline:
            kept = await run_in_threadpool(_kept_answer, session, username, key)
            if kept is not None:
                return answer_type.model_validate_json(kept)
            await asyncio.sleep(POLL_SECONDS)
    try:
        answer = await work()
    except BaseException:
        await run_in_threadpool(_release, session, username, key)  # a resend may try again
        raise
    await run_in_threadpool(_keep, session, username, key, answer.model_dump_json())
    return answer


def _claim(session: Session, username: str, key: str, fingerprint: str) -> bool:
    """True for the first request with this key; 409 for another request with it."""
    session.add(BatchRequest(username=username, request_key=key, fingerprint=fingerprint))
    try:
        session.commit()
        return True
    except IntegrityError:
        session.rollback()
    first = session.get(BatchRequest, (username, key))
    if first is not None and first.fingerprint != fingerprint:
        raise ApiError(
            409,
            "this Idempotency-Key was used for a different request; a new request needs a "
            "new key",
            rule="H-2",
            field="Idempotency-Key",
        )
    return False


def _kept_answer(session: Session, username: str, key: str) -> str | None:
    session.expire_all()
    first = session.get(BatchRequest, (username, key))
    answer = first.answer if first is not None else None
    session.close()  # not held between polls
    return answer


def _keep(session: Session, username: str, key: str, answer: str) -> None:
    first = session.get(BatchRequest, (username, key))
    if first is not None and first.answer is None:
        first.answer = answer
        session.add(first)
        session.commit()


def _release(session: Session, username: str, key: str) -> None:
    session.rollback()
    first = session.get(BatchRequest, (username, key))
    if first is not None and first.answer is None:
        session.delete(first)
        session.commit()
