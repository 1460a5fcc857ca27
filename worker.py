"""The worker: the composition root where adapters are built and handed to activities.

Run it with ``python worker.py`` (the run command does). Any number of workers may
poll the same task queue against one Temporal cluster and one database.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from activities.calendar import CalendarActivities
from activities.credit_bureau import CreditBureauActivities
from activities.ledger import LedgerActivities
from activities.notifications import NotificationActivities
from activities.register import RegisterActivities
from activities.sms import SmsActivities, SmsRetry
from adapters.calendar import CalendarResolver, CalendarTableError
from adapters.credit_bureau import FixtureCreditBureau
from adapters.ledger import SqlLedger
from adapters.notices import NoticeBook, NoticeRenderer
from adapters.notifications import OutboxNotifier, TemplateRenderer
from adapters.sms_gateway import HttpSmsGateway
from api.logging import configure_logging
from settings import PROJECT_DIR, Settings, get_settings
from store.db import SessionFactory, make_engine, session_factory
from workflows.loan import LoanWorkflow
from workflows.servicing import LoanServicingWorkflow
from workflows.sms_delivery import SmsDeliveryStarter, SmsDeliveryWorkflow
from workflows.step_keys import StepKeysInterceptor

log = logging.getLogger("loanflow.worker")

WORKFLOWS: Sequence[type] = (LoanWorkflow, LoanServicingWorkflow, SmsDeliveryWorkflow)
# Every step of every loan goes through these (exactly once across runs, issue 9).
INTERCEPTORS: Sequence[Interceptor] = (StepKeysInterceptor(),)
ACTIVITY_THREADS = 32  # activities are sync (database I/O) and run on this many threads


def sms_retry(settings: Settings) -> SmsRetry:
    timeout = settings.sms_gateway_timeout_seconds
    return SmsRetry(
        initial_interval=timedelta(seconds=settings.sms_retry_initial_seconds),
        backoff_coefficient=settings.sms_retry_backoff,
        maximum_interval=timedelta(seconds=settings.sms_retry_max_interval_seconds),
        maximum_attempts=settings.sms_retry_max_attempts,
        give_up_after=timedelta(hours=settings.sms_give_up_after_hours),
        # httpx bounds connecting, sending and reading each by the timeout; then the outbox.
        attempt_timeout=timedelta(seconds=3 * timeout + 10),
    )


def build_activities(
    sessions: SessionFactory, settings: Settings, client: Client | None = None
) -> list[Callable[..., Any]]:
    """Every activity, bound to the embedded default adapters. With a gateway URL and a
    client, ``send_sms`` starts each queued text's delivery."""
    register = RegisterActivities(sessions)
    ledger = LedgerActivities(SqlLedger(sessions))
    gateway_url = settings.sms_gateway_url
    notifications = NotificationActivities(
        OutboxNotifier(sessions),
        TemplateRenderer(PROJECT_DIR / "templates"),
        SmsDeliveryStarter(client, settings.task_queue, sms_retry(settings))
        if client is not None and gateway_url
        else None,
        notices=NoticeBook(
            sessions, NoticeRenderer(PROJECT_DIR / "templates"), settings.cooperative_name
        ),
    )
    sms = SmsActivities(
        sessions,
        HttpSmsGateway(gateway_url, settings.sms_gateway_timeout_seconds) if gateway_url else None,
    )
    bureau = CreditBureauActivities(FixtureCreditBureau(settings.credit_bureau_fixtures))
    calendar = CalendarActivities(CalendarResolver(settings.calendar_dir))  # tables checked
    return [
        register.claim_household,
        register.release_household,
        register.project_loan,
        register.store_schedule,
        register.late_task_recipients,
        register.record_credit_event,
        register.blacklist_household,
        register.household_credit,
        ledger.post_disbursement,
        ledger.settlement_balance,
        ledger.post_deposit,
        ledger.post_repayment,
        ledger.post_write_off,
        ledger.post_recovery,
        notifications.send_sms,
        notifications.notify_staff,
        notifications.issue_notice,
        sms.deliver_sms,
        sms.record_sms_failure,
        bureau.fetch_credit_report,
        calendar.resolve_calendar_year,
    ]


def build_worker(
    client: Client,
    sessions: SessionFactory,
    settings: Settings,
    executor: ThreadPoolExecutor,
) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(WORKFLOWS),
        interceptors=list(INTERCEPTORS),
        activities=build_activities(sessions, settings, client),
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
    )


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=settings.data_converter(),
        **settings.temporal_connect_options(),
    )


async def main() -> None:
    settings = get_settings()
    configure_logging(logging.INFO)
    engine = make_engine(settings.database_url)
    client = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        try:
            worker = build_worker(client, session_factory(engine), settings, executor)
        except CalendarTableError as bad:  # rule A-5: no loan counts on a wrong table
            raise SystemExit(f"loanflow worker: {bad}") from bad
        log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
        async with worker:
            await stop.wait()
    engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
