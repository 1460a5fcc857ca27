"""API fixtures: a real Temporal dev server for the session, and per test a fresh
migrated SQLite database, an app with its lifespan running, an HTTP client and the
seeded development accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.services.users import DEV_PASSWORD, SeededUser, seed_development_data
from settings import Settings, bundled_binary
from store.migrate import upgrade_database
from workflows.search_attributes import ALL_KEYS

TEST_SECRET_KEY = "test-secret-key-for-api-tests-0123456789"

Login = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture(scope="session")
async def temporal_dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(bundled_binary("temporal")),
        search_attributes=ALL_KEYS,
        data_converter=pydantic_data_converter,
        ui=False,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def api_settings(tmp_path: Path, temporal_dev_env: WorkflowEnvironment) -> Settings:
    database_url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade_database(database_url)
    return Settings(
        environment="test",
        database_url=database_url,
        data_dir=tmp_path,
        temporal_address=temporal_dev_env.client.service_client.config.target_host,
        temporal_namespace=temporal_dev_env.client.namespace,
        embedded_temporal=False,
        secret_key=TEST_SECRET_KEY,
    )


@pytest.fixture
async def app(api_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(api_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        yield client


@pytest.fixture
def seeded_users(app: FastAPI) -> list[SeededUser]:
    with app.state.sessions() as session:
        return seed_development_data(session)


@pytest.fixture
def login(http: AsyncClient, seeded_users: list[SeededUser]) -> Login:
    """``headers = await login("approver1")``: bearer headers for a seeded account."""

    async def sign_in(username: str, password: str = DEV_PASSWORD) -> dict[str, str]:
        response = await http.post("/auth/token", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return sign_in
