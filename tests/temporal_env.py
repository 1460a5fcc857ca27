"""The time-skipping test server, as the workflow tests and the history recorder start it."""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from settings import Settings, bundled_binary
from workflows.search_attributes import registrations


async def start_time_skipping() -> WorkflowEnvironment:
    """The bundled test server (never downloaded), with the loan search attributes."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(bundled_binary("temporal-test-server")),
        data_converter=Settings(environment="test").data_converter(),  # encrypting (H-3)
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace, search_attributes=registrations()
        )
    )
    return env
