"""A step accepted while its answer was lost, then retried across a Temporal restart (issue 9).

The signing reaches the loan and the money moves, but the API never hears back (the
server went away: the client was told 503). The retry, once Temporal is back and the loan
has continued as new into post-loan management, gets the first answer: never a 409, never
a second payout. This test runs its own dev server, on its own port and database file, so
it can stop and start it.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlmodel import select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.services import idempotency
from api.services.loans import masked
from api.services.users import actor_for, get_active_user, seed_development_data
from domain.loan import ContractSigning
from settings import Settings, bundled_binary
from store.migrate import upgrade_database
from store.models import JournalEntry
from tests.api.conftest import TEST_SECRET_KEY, LoanApi, china_today, signing_body
from worker import ACTIVITY_THREADS, build_worker
from workflows.loan import LoanWorkflow
from workflows.messages import SignContract, workflow_id_for
from workflows.search_attributes import ALL_KEYS


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _dev_server(port: int, database: Path) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(bundled_binary("temporal")),
        port=port,
        search_attributes=ALL_KEYS,
        data_converter=Settings(environment="test").data_converter(),
        ui=False,
        dev_server_extra_args=["--db-filename", str(database)],
    )


@pytest.fixture
async def restartable(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, int, Path]]:
    port = _free_port()
    env = await _dev_server(port, tmp_path / "temporal.db")
    await env.shutdown()  # created with its search attributes; each test starts it again
    database_url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade_database(database_url)
    settings = Settings(
        environment="test",
        database_url=database_url,
        data_dir=tmp_path,
        temporal_address=f"127.0.0.1:{port}",
        embedded_temporal=False,
        secret_key=TEST_SECRET_KEY,
        task_queue=f"restart-{uuid.uuid4().hex}",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        with app.state.sessions() as session:
            seed_development_data(session)
        yield app, port, tmp_path / "temporal.db"


async def test_a_signing_answered_503_is_retried_after_a_restart_and_gets_its_first_answer(
    restartable: tuple[FastAPI, int, Path],
) -> None:
    app, port, database = restartable
    settings: Settings = app.state.settings
    env = await _dev_server(port, database)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:

        async def login(username: str) -> dict[str, str]:
            response = await http.post(
                "/auth/token", data={"username": username, "password": "loanflow-dev"}
            )
            assert response.status_code == 200, response.text
            return {"Authorization": f"Bearer {response.json()['access_token']}"}

        loan_api = LoanApi(http, login)
        worker_client = await Client.connect(
            settings.temporal_address, data_converter=settings.data_converter()
        )
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            async with build_worker(worker_client, app.state.sessions, settings, executor):
                loan_id = await loan_api.apply()
                await loan_api.to_signing(loan_id)

                # The signing reaches the loan with the id the API gives it, and is applied;
                # its answer is lost with the server.
                with app.state.sessions() as session:
                    officer = get_active_user(session, "officer1")
                    assert officer is not None
                    actor = actor_for(officer)
                body = signing_body(china_today())
                step = SignContract(actor=actor, signing=ContractSigning.model_validate(body))
                update_id = idempotency.step_update_id(
                    "sign_contract", step, actor, "sign-1", china_today()
                )
                handle = worker_client.get_workflow_handle(workflow_id_for(loan_id))
                first = await handle.execute_update(
                    LoanWorkflow.sign_contract, step, id=update_id
                )
                await loan_api.wait_for_stage(loan_id, "repaying")

                await env.shutdown()
                path = f"/loans/{loan_id}/contract"
                while_down = await loan_api.post("officer1", path, body, key="sign-1")
                assert while_down.status_code == 503, while_down.text

                env = await _dev_server(port, database)
                retried = await loan_api.post("officer1", path, body, key="sign-1")
                assert retried.status_code == 200, retried.text
                assert retried.json() == masked(first).model_dump(mode="json")
    await env.shutdown()
    with app.state.sessions() as session:
        entries = session.exec(select(JournalEntry).where(JournalEntry.loan_id == loan_id)).all()
    assert [e.kind for e in entries] == ["disbursement"]
