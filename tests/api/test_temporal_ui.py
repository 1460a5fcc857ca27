"""The Temporal Web UI as the run command starts it, served by the API to auditors (H-3).

The dev server is started here with the run command's own arguments (``manage.py``), Web
UI included; the app serves that UI under /temporal/. In headless Chromium an auditor
signs in on the staff pages, opens a loan's workflow in the Web UI and reads its input
decoded; a loan officer and an anonymous visitor do not get through, and the UI opened on
the dev server's own port (past the API) shows the payloads encrypted.
"""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from google.protobuf import json_format
from playwright.async_api import Browser, expect
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.services.users import DEV_PASSWORD
from manage import temporal_dev_server_command
from settings import Settings
from tests.api.conftest import LoanApi, china_today, free_port
from tests.api.test_web_browser import Staff
from tests.samples import application_data

UI_LOADS = 60_000  # ms: the Web UI's bundle is large and this machine has two cores
CONNECT_TRIES = 120


@pytest.fixture(scope="module")
def run_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        environment="test",
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_ui_port=free_port(),
        data_dir=tmp_path_factory.mktemp("temporal"),
    )


async def _connect(settings: Settings, server: subprocess.Popen[bytes]) -> Client:
    for _ in range(CONNECT_TRIES):
        assert server.poll() is None, f"the dev server exited with {server.returncode}"
        try:
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.temporal_namespace,
                data_converter=settings.data_converter(),
            )
        except RuntimeError:
            await asyncio.sleep(0.25)
    raise AssertionError(f"the dev server never answered on {settings.temporal_address}")


@pytest.fixture(scope="module")
async def temporal_dev_env(run_settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
    """The dev server exactly as ``manage.py run`` starts it, for this module's tests."""
    server = subprocess.Popen(
        temporal_dev_server_command(run_settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield WorkflowEnvironment.from_client(await _connect(run_settings, server))
    finally:
        server.terminate()
        await asyncio.to_thread(server.wait, 30)


@pytest.fixture
def api_settings(api_settings: Settings, run_settings: Settings) -> Settings:
    """The app's settings, with the run command's Web UI to serve."""
    return api_settings.model_copy(update={"temporal_ui_port": run_settings.temporal_ui_port})


async def _applied(loan_api: LoanApi) -> dict[str, Any]:
    """A loan past intake (so its history holds payloads); the application sent."""
    data = application_data(china_today())
    response = await loan_api.post("officer1", "/loans", data)
    assert response.status_code == 201, response.text
    loan_id = response.json()["loan_id"]
    await loan_api.wait_for_stage(loan_id, "investigation")
    return {"loan_id": loan_id, **data}


def _workflow_page(ui: str, loan_id: str) -> str:
    return f"{ui}/namespaces/default/workflows/loan-{loan_id}"


async def test_an_auditor_reads_a_loan_decoded_in_the_web_ui(
    browser: Browser, live_url: str, loan_api: LoanApi, temporal_dev_env: WorkflowEnvironment
) -> None:
    loan = await _applied(loan_api)
    household = loan["applicant"]["household_id"]
    auditor = await Staff.sign_in(browser, live_url, "auditor1")
    page = auditor.page
    decoded: list[int] = []
    page.on(
        "response",
        lambda r: decoded.append(r.status) if urlsplit(r.url).path == "/codec/decode" else None,
    )
    await page.goto(_workflow_page(f"{live_url}/temporal", loan["loan_id"]))
    # The application as the workflow received it, decoded by the API's codec (H-3).
    await expect(page.get_by_text(f'"{household}"').first).to_be_visible(timeout=UI_LOADS)
    await expect(page.get_by_text('"张大山"').first).to_be_visible()
    assert decoded and set(decoded) == {200}
    # The same call the UI makes, with the page's session cookie and no token.
    sealed = await _sealed_input(temporal_dev_env, loan["loan_id"])
    answer = await page.request.post(f"{live_url}/codec/decode", data={"payloads": [sealed]})
    assert answer.status == 200
    assert household in base64.b64decode((await answer.json())["payloads"][0]["data"]).decode()
    # Read-only: the UI offers nothing to do to the loan, and the API would pass none on.
    await expect(page.get_by_role("button", name="Request Cancellation")).to_be_disabled()
    refused = await page.request.post(
        f"{live_url}/temporal/api/v1/namespaces/default/workflows/loan-{loan['loan_id']}/terminate",
        data={"reason": "test"},
    )
    assert refused.status == 403
    await auditor.close()


async def test_nobody_else_gets_the_web_ui_or_decoded_payloads(
    browser: Browser,
    live_url: str,
    loan_api: LoanApi,
    run_settings: Settings,
    temporal_dev_env: WorkflowEnvironment,
) -> None:
    loan = await _applied(loan_api)
    household = loan["applicant"]["household_id"]
    officer = await Staff.sign_in(browser, live_url, "officer1")
    opened = await officer.page.goto(f"{live_url}/temporal/")
    assert opened is not None and opened.status == 403
    sealed = await _sealed_input(temporal_dev_env, loan["loan_id"])
    by_cookie = await officer.context.request.post(
        f"{live_url}/codec/decode", data={"payloads": [sealed]}
    )
    assert by_cookie.status == 403
    await officer.close()

    # Nobody signed in is sent to the sign-in page, and back to the UI after it.
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{live_url}/temporal/")
    await expect(page.locator("h1")).to_have_text("员工登录")
    await page.fill("#username", "auditor1")
    await page.fill("#password", DEV_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(re.compile(f"^{re.escape(live_url)}/temporal/"))

    # The UI opened on the dev server's own port, past the API: ciphertext only.
    direct = await context.new_page()
    ui = f"http://127.0.0.1:{run_settings.temporal_ui_port}/temporal"
    await direct.goto(_workflow_page(ui, loan["loan_id"]))
    failed = direct.locator("#content").get_by_text("Codec Server could not connect")
    await expect(failed).to_be_visible(timeout=UI_LOADS)
    await expect(direct.get_by_role("heading", name="Input", exact=True)).to_be_visible()
    shown = await direct.content()
    assert household not in shown and "张大山" not in shown
    await context.close()


async def _sealed_input(env: WorkflowEnvironment, loan_id: str) -> dict[str, Any]:
    """The workflow's input as Temporal stores it (encrypted), in the codec's JSON form."""
    history = await env.client.get_workflow_handle(f"loan-{loan_id}").fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    sealed: dict[str, Any] = json_format.MessageToDict(started.input.payloads[0])
    return sealed
