"""API fixtures: a real Temporal dev server for the session, and per test a fresh
migrated SQLite database and task queue, an app with its lifespan running, an HTTP
client, the seeded development accounts and (for tests that need one) a worker; for
browser tests the app on a real port and headless Chromium."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from playwright.async_api import Browser, async_playwright
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.main import create_app
from api.services.users import DEV_PASSWORD, SeededUser, seed_development_data
from domain.calendar import CHINA
from settings import Settings, bundled_binary
from store.migrate import upgrade_database
from tests.samples import application_data, approve, forward, report_data, signing
from worker import ACTIVITY_THREADS, build_worker
from workflows.search_attributes import ALL_KEYS

TEST_SECRET_KEY = "test-secret-key-for-api-tests-0123456789"

Login = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture(scope="session")
async def temporal_dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(bundled_binary("temporal")),
        search_attributes=ALL_KEYS,
        data_converter=Settings(environment="test").data_converter(),  # encrypting (H-3)
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
        # Each test's workflows go to its own queue, polled only by its own worker.
        task_queue=f"api-{uuid.uuid4().hex}",
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


@pytest.fixture
async def worker(
    app: FastAPI, api_settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> AsyncIterator[Worker]:
    """The loan worker for this test: its task queue, its database, for the test's duration."""
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        running = build_worker(temporal_dev_env.client, app.state.sessions, api_settings, executor)
        async with running:
            yield running


POLL_TRIES = 300
POLL_INTERVAL = 0.03  # seconds; POLL_TRIES * POLL_INTERVAL bounds every wait


def china_today() -> date:
    """The business day the workflow and the API go by (China has one time zone)."""
    return datetime.now(UTC).astimezone(CHINA).date()


@dataclass
class LoanApi:
    """The loan endpoints as the seeded staff use them, each with a token from /auth/token."""

    http: AsyncClient
    login: Login
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    async def headers(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            self.tokens[username] = await self.login(username)
        return self.tokens[username]

    async def get(self, username: str, path: str, **params: Any) -> Response:
        return await self.http.get(path, headers=await self.headers(username), params=params)

    async def post(
        self, username: str, path: str, body: Any = None, *, key: str | None = None
    ) -> Response:
        headers = dict(await self.headers(username))
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.http.post(path, headers=headers, json=body)

    async def apply(self, officer: str = "officer1", **overrides: Any) -> str:
        """POST /loans with a clean application (``overrides`` as for application_data)."""
        response = await self.post(officer, "/loans", application_data(china_today(), **overrides))
        assert response.status_code == 201, response.text
        return str(response.json()["loan_id"])

    async def wait_for_stage(
        self, loan_id: str, stage: str, *, username: str = "officer1"
    ) -> dict[str, Any]:
        """Polls GET /loans/{id} until both the register and the workflow show ``stage``."""
        seen: Any = "no register row yet"
        for _ in range(POLL_TRIES):
            response = await self.get(username, f"/loans/{loan_id}")
            if response.status_code == 200:
                detail: dict[str, Any] = response.json()
                register = detail["loan"]["stage"] if detail["loan"] else None
                seen = (register, detail["workflow"]["stage"])
                if seen == (stage, stage):
                    return detail
            else:
                raise AssertionError(f"GET /loans/{loan_id}: {response.text}")
            await asyncio.sleep(POLL_INTERVAL)
        raise AssertionError(f"loan {loan_id} never reached stage {stage}; last seen {seen}")

    async def step(
        self,
        username: str,
        loan_id: str,
        endpoint: str,
        body: Any,
        *,
        key: str | None = None,
        expect: int = 200,
    ) -> dict[str, Any]:
        """POSTs one human step and checks its status; returns the body."""
        response = await self.post(username, f"/loans/{loan_id}/{endpoint}", body, key=key)
        assert response.status_code == expect, response.text
        result: dict[str, Any] = response.json()
        return result

    async def investigate(
        self,
        loan_id: str,
        officers: Iterable[str] = ("officer1", "officer2"),
        amount: str = "30000",
        term_months: int = 12,
    ) -> dict[str, Any]:
        """Both investigation reports (I-1), once the loan is in investigation."""
        await self.wait_for_stage(loan_id, "investigation")
        status: dict[str, Any] = {}
        for officer in officers:
            body = report_data(amount=amount, term_months=term_months)
            status = await self.step(officer, loan_id, "investigations", body)
        return status

    async def to_approval(self, loan_id: str, amount: str = "30000") -> dict[str, Any]:
        """A county-tier loan through both investigations and the review."""
        await self.investigate(loan_id, amount=amount)
        return await self.step("reviewer1", loan_id, "review", review_body())

    async def to_signing(self, loan_id: str, amount: str = "30000") -> dict[str, Any]:
        await self.to_approval(loan_id, amount)
        return await self.step("approver1", loan_id, "decision", approval_body(amount))

    async def to_repaying(self, loan_id: str, amount: str = "30000") -> dict[str, Any]:
        """Approved for ``amount``, signed today and paid out: post-loan management runs."""
        await self.to_signing(loan_id, amount)
        await self.step("officer1", loan_id, "contract", signing_body(china_today()))
        return await self.wait_for_stage(loan_id, "repaying")


def review_body(comment: str = "材料齐全，同意上报") -> dict[str, Any]:
    return forward(comment).model_dump(mode="json")


def approval_body(amount: str = "30000", term_months: int = 12) -> dict[str, Any]:
    return approve(amount, term_months).model_dump(mode="json")


def signing_body(signed_on: date) -> dict[str, Any]:
    return signing(signed_on).model_dump(mode="json")


@pytest.fixture
def loan_api(http: AsyncClient, login: Login, worker: Worker) -> LoanApi:
    """HTTP helpers for the loan endpoints, with a worker running the loans' workflows."""
    return LoanApi(http, login)


async def workflows_on_queue(env: WorkflowEnvironment, task_queue: str) -> list[str]:
    """Ids of the workflows ever started on a task queue (Temporal's visibility)."""
    return [wf.id async for wf in env.client.list_workflows(f"TaskQueue = '{task_queue}'")]


CHROMIUM = os.environ.get("LOANFLOW_CHROMIUM", "/usr/bin/chromium")
# As the machine's probe starts it: no sandbox as root, and nothing that calls out.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def live_url(api_settings: Settings, worker: Worker) -> AsyncIterator[str]:
    """The app on a real HTTP port, as the run command serves it."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(api_settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 10)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()
