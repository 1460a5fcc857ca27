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
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.credit_bureau import CreditBureauActivities
from activities.ledger import LedgerActivities
from activities.notifications import NotificationActivities
from activities.register import RegisterActivities
from adapters.credit_bureau import FixtureCreditBureau
from adapters.ledger import SqlLedger
from adapters.notifications import OutboxNotifier, TemplateRenderer
from api.logging import configure_logging
from settings import PROJECT_DIR, Settings, get_settings
from store.db import SessionFactory, make_engine, session_factory
from workflows.loan import LoanWorkflow
from workflows.servicing import LoanServicingWorkflow

log = logging.getLogger("loanflow.worker")

WORKFLOWS: Sequence[type] = (LoanWorkflow, LoanServicingWorkflow)
ACTIVITY_THREADS = 32  # activities are sync (database I/O) and run on this many threads


def build_activities(sessions: SessionFactory, settings: Settings) -> list[Callable[..., Any]]:
    """Every activity, bound to the embedded default adapters."""
    register = RegisterActivities(sessions)
    ledger = LedgerActivities(SqlLedger(sessions))
    notifications = NotificationActivities(
        OutboxNotifier(sessions), TemplateRenderer(PROJECT_DIR / "templates")
    )
    bureau = CreditBureauActivities(FixtureCreditBureau(settings.credit_bureau_fixtures))
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
        bureau.fetch_credit_report,
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
        activities=build_activities(sessions, settings),
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
        worker = build_worker(client, session_factory(engine), settings, executor)
        log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
        async with worker:
            await stop.wait()
    engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
