"""Liveness of the API's two dependencies: Temporal and the database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, text

from api.errors import ApiError
from api.temporal import TemporalConnection

CHECK_TIMEOUT = timedelta(seconds=3)


def _select_one(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _reason(exc: BaseException, timeout: timedelta) -> str:
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout.total_seconds():g}s"
    return str(exc) or type(exc).__name__


async def check_temporal(
    temporal: TemporalConnection, timeout: timedelta = CHECK_TIMEOUT
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "ok": True,
        "address": temporal.address,
        "namespace": temporal.namespace,
    }
    try:
        await temporal.check(timeout)
    except Exception as exc:  # any failure is the report's content, not an error
        report.update(ok=False, error=_reason(exc, timeout))
    return report


async def check_database(engine: Engine, timeout: timedelta = CHECK_TIMEOUT) -> dict[str, Any]:
    try:
        await asyncio.wait_for(asyncio.to_thread(_select_one, engine), timeout.total_seconds())
    except Exception as exc:
        return {"ok": False, "error": _reason(exc, timeout)}
    return {"ok": True}


async def check_health(
    temporal: TemporalConnection, engine: Engine, timeout: timedelta = CHECK_TIMEOUT
) -> dict[str, Any]:
    """``{"status": "ok" | "degraded", "temporal": {...}, "database": {...}}``."""
    temporal_report, database_report = await asyncio.gather(
        check_temporal(temporal, timeout), check_database(engine, timeout)
    )
    ok = temporal_report["ok"] and database_report["ok"]
    return {
        "status": "ok" if ok else "degraded",
        "temporal": temporal_report,
        "database": database_report,
    }
