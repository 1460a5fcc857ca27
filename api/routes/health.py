"""Health check for load balancers and the run command."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import EngineDep, TemporalConnectionDep
from api.services.health import check_health

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Is the API able to reach Temporal and the database?")
async def healthz(temporal: TemporalConnectionDep, engine: EngineDep) -> JSONResponse:
    report = await check_health(temporal, engine)
    return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)
