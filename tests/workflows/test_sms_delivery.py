"""SMS delivery on the time-skipping server against a real local HTTP gateway (the stub):
retries with backoff, permanent refusals, timeouts, one delivery per outbox row, and a
loan that never waits for the gateway (H-3: no phone number in the delivery's history)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.notifications import SendSmsInput
from activities.sms import SmsDeliveryResult
from adapters.notifications import NotificationResult
from adapters.sms_stub import StubSmsGateway
from domain.loan import Stage
from domain.policy import Policy
from settings import Settings
from store.db import SessionFactory, make_engine, session_factory
from store.migrate import upgrade_database
from store.models import Notification
from tests.samples import application
from tests.workflows.conftest import LoanHarness
from worker import ACTIVITY_THREADS, build_activities, build_worker
from workflows.sms_delivery import delivery_workflow_id

PHONE = "13812345678"
CONTEXT = {
    "name": "张大山",
    "loan_id": "LN20260101DEADBEEF",
    "institution": "示范县农村信用合作联社",
    "amount": "30000",
}
GATEWAY_DOWN = 10**6  # the stub fails every request of every message


@dataclass
class SmsHarness:
    env: WorkflowEnvironment
    stub: StubSmsGateway
    sessions: SessionFactory
    send_sms: Callable[[SendSmsInput], NotificationResult]

    async def send(self, key: str) -> NotificationResult:
        """The loan's ``send_sms`` activity, as a worker thread runs it."""
        inp = SendSmsInput(
            idempotency_key=key,
            loan_id="LN20260101DEADBEEF",
            phone=PHONE,
            template="application_received",
            context=CONTEXT,
        )
        return await asyncio.to_thread(ActivityEnvironment().run, self.send_sms, inp)

    async def delivery(self, key: str) -> SmsDeliveryResult:
        """The delivery's outcome, once the test server has skipped its backoff (the
        clock stands still while an attempt runs: a gateway's slowness stays real)."""
        await self.env.sleep(timedelta(hours=1))
        handle = self.env.client.get_workflow_handle(
            delivery_workflow_id(key), result_type=SmsDeliveryResult
        )
        return await handle.result()

    def row(self, key: str) -> Notification:
        with self.sessions() as session:
            return session.exec(
                select(Notification).where(Notification.idempotency_key == key)
            ).one()


def gateway_settings(
    url: str,
    stub: StubSmsGateway,
    *,
    initial_seconds: float = 5,
    max_interval_seconds: float = 60,
    max_attempts: int = 5,
    give_up_after_hours: float = 24,
) -> Settings:
    return Settings(
        environment="test",
        database_url=url,
        task_queue=f"sms-{uuid.uuid4().hex[:8]}",
        sms_gateway_url=stub.url,
        sms_gateway_timeout_seconds=0.3,
        sms_retry_initial_seconds=initial_seconds,
        sms_retry_max_interval_seconds=max_interval_seconds,
        sms_retry_max_attempts=max_attempts,
        sms_give_up_after_hours=give_up_after_hours,
    )


@pytest.fixture
def stub() -> Iterator[StubSmsGateway]:
    with StubSmsGateway() as running:
        yield running


@pytest.fixture
def read_model(tmp_path: Path) -> Iterator[tuple[str, SessionFactory]]:
    url = f"sqlite:///{tmp_path / 'readmodel.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    yield url, session_factory(engine)
    engine.dispose()


@asynccontextmanager
async def sms_worker(
    env: WorkflowEnvironment,
    stub: StubSmsGateway,
    read_model: tuple[str, SessionFactory],
    **retry: Any,
) -> AsyncIterator[SmsHarness]:
    """The worker as worker.py builds it, with the stub as gateway, and its ``send_sms``."""
    url, sessions = read_model
    settings = gateway_settings(url, stub, **retry)
    activities = build_activities(sessions, settings, env.client)
    [send_sms] = [a for a in activities if getattr(a, "__name__", "") == "send_sms"]
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(env.client, sessions, settings, executor):
            yield SmsHarness(env, stub, sessions, send_sms)


@pytest.fixture
async def sms(
    time_skipping_env: WorkflowEnvironment,
    stub: StubSmsGateway,
    read_model: tuple[str, SessionFactory],
) -> AsyncIterator[SmsHarness]:
    async with sms_worker(time_skipping_env, stub, read_model) as harness:
        yield harness


async def test_retried_with_backoff_until_the_gateway_takes_it(sms: SmsHarness) -> None:
    sms.stub.fail_first = 2  # 503, 503, then accepted
    key = "loan-LN20260101DEADBEEF/sms/application_received/r0"
    queued = await sms.send(key)

    result = await sms.delivery(key)

    assert (result.status, result.attempts) == ("delivered", 3)
    row = sms.row(key)
    assert row.id == queued.notification_id
    assert (row.status, row.attempts, row.gateway_message_id) == ("delivered", 3, "stub-1")
    assert row.delivered_at is not None and row.last_error is None
    assert sms.stub.requests[key] == 3
    assert list(sms.stub.accepted) == [key]  # exactly one accepted message
    history = await decoded_payloads(sms.env.client, delivery_workflow_id(key))
    assert "notification_id" in history and PHONE not in history  # H-3


async def test_a_permanent_refusal_fails_at_once(sms: SmsHarness) -> None:
    sms.stub.fail_first, sms.stub.fail_status = 1, 400
    key = "loan-LN20260101DEADBEEF/sms/refused"
    await sms.send(key)

    result = await sms.delivery(key)

    assert (result.status, result.attempts) == ("failed", 1)
    row = sms.row(key)
    assert row.status == "failed" and row.delivered_at is None
    assert row.last_error is not None and row.last_error.startswith("gateway answered 400")
    assert sms.stub.requests[key] == 1 and sms.stub.accepted == {}


async def test_a_timeout_is_retried(sms: SmsHarness) -> None:
    sms.stub.fail_first, sms.stub.fail_delay = 1, 1.0  # longer than the 0.3 s timeout
    key = "loan-LN20260101DEADBEEF/sms/slow"
    await sms.send(key)

    result = await sms.delivery(key)

    assert (result.status, result.attempts) == ("delivered", 2)
    assert list(sms.stub.accepted) == [key]


async def test_retries_end_and_the_row_is_failed_with_the_last_error(sms: SmsHarness) -> None:
    sms.stub.fail_first = GATEWAY_DOWN
    key = "loan-LN20260101DEADBEEF/sms/never"
    await sms.send(key)

    result = await sms.delivery(key)

    assert (result.status, result.attempts) == ("failed", 5)  # sms_retry_max_attempts
    row = sms.row(key)
    assert row.status == "failed" and row.last_error is not None
    assert row.last_error.startswith("gateway answered 503")
    assert sms.stub.requests[key] == 5 and sms.stub.accepted == {}


async def test_after_a_day_without_the_gateway_the_row_is_failed(
    time_skipping_env: WorkflowEnvironment,
    stub: StubSmsGateway,
    read_model: tuple[str, SessionFactory],
) -> None:
    stub.fail_first = GATEWAY_DOWN
    key = "loan-LN20260101DEADBEEF/sms/a-day"
    # No attempt limit: the deadline ends the retries (a minute here, a day by default).
    deadline = {"max_attempts": 0, "give_up_after_hours": 1 / 60}
    async with sms_worker(time_skipping_env, stub, read_model, **deadline) as sms:
        await sms.send(key)
        result = await sms.delivery(key)

    assert result.status == "failed" and result.attempts == stub.requests[key] >= 3
    row = sms.row(key)
    assert row.status == "failed" and row.last_error is not None
    # Temporal schedules no retry past the deadline: the last answer is the error.
    assert row.last_error.startswith("gateway answered 503")


async def test_send_sms_retried_starts_one_delivery_and_posts_once(sms: SmsHarness) -> None:
    key = "loan-LN20260101DEADBEEF/sms/twice"
    first = await sms.send(key)
    again = await sms.send(key)  # an activity retry while the delivery may still run
    assert again.already_sent and again.notification_id == first.notification_id
    run = (await sms.env.client.get_workflow_handle(delivery_workflow_id(key)).describe()).run_id
    assert (await sms.delivery(key)).status == "delivered"

    late = await sms.send(key)  # and a retry after the delivery finished

    assert late.already_sent
    described = await sms.env.client.get_workflow_handle(delivery_workflow_id(key)).describe()
    assert described.run_id == run  # no second delivery
    assert sms.stub.requests[key] == 1 and sms.row(key).attempts == 1


@pytest.fixture
async def loans_with_gateway(
    time_skipping_env: WorkflowEnvironment,
    stub: StubSmsGateway,
    read_model: tuple[str, SessionFactory],
    policy: Policy,
) -> AsyncIterator[LoanHarness]:
    url, sessions = read_model
    # Retried until the gateway is back (a day at most), as in production, but every
    # 0.2 to 1 s: this test waits in real time.
    settings = gateway_settings(
        url, stub, initial_seconds=0.2, max_interval_seconds=1, max_attempts=0
    )
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(time_skipping_env.client, sessions, settings, executor):
            yield LoanHarness(time_skipping_env, settings.task_queue, sessions, policy)


async def test_a_loan_goes_on_while_the_gateway_is_down(
    loans_with_gateway: LoanHarness, stub: StubSmsGateway
) -> None:
    loans = loans_with_gateway
    stub.fail_first = GATEWAY_DOWN
    handle = await loans.apply(application(await loans.today()))
    loan_id = handle.id.removeprefix("loan-")

    await loans.wait_for_stage(handle, Stage.INVESTIGATION)

    def received() -> Notification | None:
        with loans.sessions() as session:
            return session.exec(
                select(Notification).where(
                    Notification.loan_id == loan_id,
                    Notification.template == "application_received",
                )
            ).first()

    await loans.eventually(lambda: (row := received()) is not None and row.attempts >= 1)
    row = received()
    assert row is not None and row.status == "queued"
    assert stub.accepted == {}

    stub.fail_first = 0  # the gateway is back: the text goes out on the next retry
    await loans.eventually(lambda: (row := received()) is not None and row.status == "delivered")
    assert list(stub.accepted) == [row.idempotency_key]
    # The loan's own history has no new command: the delivery is no child of it.
    history = await handle.fetch_history()
    kinds = {event.event_type for event in history.events}
    assert EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED not in kinds


async def decoded_payloads(client: Client, workflow_id: str) -> str:
    """Every input and result in a workflow's history, decrypted, as one text."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    payloads: list[Payload] = []
    for event in history.events:
        sources: list[Any] = [
            event.workflow_execution_started_event_attributes.input,
            event.activity_task_scheduled_event_attributes.input,
            event.activity_task_completed_event_attributes.result,
            event.workflow_execution_completed_event_attributes.result,
        ]
        for source in sources:
            payloads.extend(source.payloads)
    codec = client.data_converter.payload_codec
    assert codec is not None
    decoded = await codec.decode(payloads)
    return "\n".join(p.data.decode() for p in decoded)
