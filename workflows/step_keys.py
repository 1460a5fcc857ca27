"""The one place every human step passes through for exactly-once (issue 9).

A workflow interceptor, registered on every worker: before a step's own validator it
refuses a step id the loan has applied already (so the API answers with the first result,
read from the run that applied it) and a key reused for another request; once the step is
accepted it remembers the id in the loan's state, which the loan carries across
continue-as-new (``domain.step_keys``). A step refused after all (re-checked when its turn
comes) is forgotten again: nothing was applied.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

with workflow.unsafe.imports_passed_through():
    from domain.errors import ViolationKind
    from domain.step_keys import earlier_use, remember
    from workflows.refusals import refusal, refuse

ALREADY_APPLIED = "StepAlreadyApplied"


@runtime_checkable
class RemembersSteps(Protocol):
    """A loan workflow: the ids of the steps it has applied, oldest first."""

    step_ids: list[str]


class StepKeysInterceptor(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _StepKeys


class _StepKeys(WorkflowInboundInterceptor):
    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        loan = workflow.instance()
        if isinstance(loan, RemembersSteps):
            _check(loan.step_ids, input.id)
        self.next.handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        loan = workflow.instance()
        if not isinstance(loan, RemembersSteps):
            return await self.next.handle_update_handler(input)
        # Remembered from acceptance, so a step with the same key that arrives while this
        # one waits its turn is refused at once; forgotten if this one is refused in the end.
        loan.step_ids = remember(loan.step_ids, input.id)
        try:
            return await self.next.handle_update_handler(input)
        except BaseException:
            loan.step_ids = [known for known in loan.step_ids if known != input.id]
            raise


def _check(remembered: list[str], update_id: str) -> None:
    earlier = earlier_use(remembered, update_id)
    if earlier is None:
        return
    if earlier == update_id:
        raise ApplicationError(
            "this step was applied already; its first answer stands",
            type=ALREADY_APPLIED,
            non_retryable=True,
        )
    raise refuse(
        [
            refusal(
                "H-2",
                "this Idempotency-Key was used for a different request on this loan; "
                "a new request needs a new key",
                ViolationKind.CONFLICT,
                "Idempotency-Key",
            )
        ]
    )
