"""/healthz against a real dev server, an unreachable Temporal and a broken database."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import APIRouter
from httpx import ASGITransport, AsyncClient
from temporalio.testing import WorkflowEnvironment

from api.deps import TemporalClientDep
from api.errors import ApiError
from api.main import create_app
from api.temporal import TemporalConnection
from settings import Settings

UNUSED_ADDRESS = "127.0.0.1:1"


async def test_healthy_with_a_running_dev_server(http: AsyncClient, api_settings: Settings) -> None:
    response = await http.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "temporal": {
            "ok": True,
            "address": api_settings.temporal_address,
            "namespace": api_settings.temporal_namespace,
        },
        "database": {"ok": True},
    }


@asynccontextmanager
async def _client_for(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A client for an app of its own, with a test route that needs the Temporal client."""
    app = create_app(settings)
    router = APIRouter()

    @router.get("/_test/namespace")
    async def namespace(client: TemporalClientDep) -> dict[str, str]:
        return {"namespace": client.namespace}

    app.include_router(router)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client


@pytest.fixture
async def http_temporal_down(api_settings: Settings) -> AsyncIterator[AsyncClient]:
    down = api_settings.model_copy(update={"temporal_address": UNUSED_ADDRESS})
    async with _client_for(down) as client:
        yield client


@pytest.fixture
async def http_database_broken(
    api_settings: Settings, tmp_path: Path
) -> AsyncIterator[AsyncClient]:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'db.sqlite'}"  # SQLite cannot create the dir
    async with _client_for(api_settings.model_copy(update={"database_url": url})) as client:
        yield client


async def test_degraded_quickly_when_temporal_is_unreachable(
    http_temporal_down: AsyncClient,
) -> None:
    started = time.monotonic()
    response = await http_temporal_down.get("/healthz")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"] == {"ok": True}
    temporal = body["temporal"]
    assert (temporal["ok"], temporal["address"]) == (False, UNUSED_ADDRESS)
    assert UNUSED_ADDRESS in temporal["error"]
    assert elapsed < 10


async def test_temporal_dependency_is_503_when_unreachable(http_temporal_down: AsyncClient) -> None:
    response = await http_temporal_down.get("/_test/namespace")

    assert response.status_code == 503
    assert response.json()["detail"]["message"].startswith(
        f"Temporal is not reachable at {UNUSED_ADDRESS}"
    )


async def test_degraded_when_the_database_is_broken(http_database_broken: AsyncClient) -> None:
    response = await http_database_broken.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["temporal"]["ok"] is True
    assert body["database"]["ok"] is False
    assert body["database"]["error"]


async def test_connection_is_retried_on_demand(temporal_dev_env: WorkflowEnvironment) -> None:
    temporal = TemporalConnection(UNUSED_ADDRESS, "default", connect_timeout=timedelta(seconds=2))
    with pytest.raises(ApiError) as refused:
        await temporal.client()
    assert refused.value.status == 503
    assert not temporal.connected

    # The server comes up (here: the address is corrected); the next request connects.
    temporal.address = temporal_dev_env.client.service_client.config.target_host
    client = await temporal.client()

    assert temporal.connected
    assert await temporal.client() is client
    await temporal.check(timedelta(seconds=2))
