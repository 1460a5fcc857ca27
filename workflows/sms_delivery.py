"""The delivery of one queued SMS (短信投递), one workflow per outbox row.

The gateway is tried with backoff until it takes the message, refuses it for good, or the
retry bound passes; the outbox row records the outcome. The ``send_sms`` activity starts
it after queuing the text, so a loan's workflow never waits on the gateway and its history
is the same with or without delivery. The input is the row's id: no phone number is ever
in this workflow's history (H-3).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from activities.sms import (
        DeliverSmsInput,
        SmsActivities,
        SmsDeliveryInput,
        SmsDeliveryResult,
        SmsFailureInput,
        SmsRetry,
    )

# Recording the outcome is database work: retried without limit, like the loan's activities.
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
RECORD_TIMEOUT = timedelta(seconds=30)


def delivery_workflow_id(idempotency_key: str) -> str:
    """One delivery per outbox row, named by the row's key (unique in the deployment)."""
    return f"sms-{idempotency_key}"


@workflow.defn
class SmsDeliveryWorkflow:
    @workflow.run
    async def run(self, inp: SmsDeliveryInput) -> SmsDeliveryResult:
        retry = inp.retry
        try:
            return await workflow.execute_activity_method(
                SmsActivities.deliver_sms,
                DeliverSmsInput(notification_id=inp.notification_id),
                start_to_close_timeout=retry.attempt_timeout,
                schedule_to_close_timeout=retry.give_up_after,
                retry_policy=RetryPolicy(
                    initial_interval=retry.initial_interval,
                    backoff_coefficient=retry.backoff_coefficient,
                    maximum_interval=retry.maximum_interval,
                    maximum_attempts=retry.maximum_attempts,
                ),
            )
        except ActivityError as failed:
            # The activity recorded each gateway answer; a timeout is the one failure it
            # could not record, so its reason goes with the outcome.
            gave_up = None
            if isinstance(failed.cause, TemporalTimeout):
                kind = failed.cause.type.name.lower() if failed.cause.type else "activity"
                gave_up = f"gave up: {kind} timeout"
            return await workflow.execute_activity_method(
                SmsActivities.record_sms_failure,
                SmsFailureInput(notification_id=inp.notification_id, gave_up=gave_up),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
            )


class SmsDeliveryStarter:
    """Starts a queued row's delivery from the (thread-pool) ``send_sms`` activity."""

    def __init__(self, client: Client, task_queue: str, retry: SmsRetry) -> None:
        self._client = client
        self._task_queue = task_queue
        self._retry = retry

    def start(self, notification_id: int, idempotency_key: str) -> None:
        """Starts it unless it was started before (a retried ``send_sms``), whether that
        delivery still runs or has finished: a row gets one delivery."""
        asyncio.run(self._start(notification_id, idempotency_key))

    async def _start(self, notification_id: int, idempotency_key: str) -> None:
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self._client.start_workflow(
                SmsDeliveryWorkflow.run,
                SmsDeliveryInput(notification_id=notification_id, retry=self._retry),
                id=delivery_workflow_id(idempotency_key),
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
