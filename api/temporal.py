"""The API's Temporal client, connected on first use so the API starts while Temporal is down."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from api.errors import ApiError
from settings import Settings

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = timedelta(seconds=5)


class TemporalConnection:
    """Holds one client; a failed connect is retried on the next request that needs it."""

    def __init__(
        self,
        address: str,
        namespace: str,
        *,
        connect_timeout: timedelta = CONNECT_TIMEOUT,
        client: Client | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.address = address
        self.namespace = namespace
        self.connect_timeout = connect_timeout
        self._options = options or {}
        self._client = client
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, connect_timeout: timedelta = CONNECT_TIMEOUT
    ) -> TemporalConnection:
        return cls(
            settings.temporal_address,
            settings.temporal_namespace,
            connect_timeout=connect_timeout,
            options={
                **settings.temporal_connect_options(),
                "data_converter": settings.data_converter(),
            },
        )

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def client(self) -> Client:
        """The connected client; ApiError 503 when Temporal cannot be reached."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                self._client = await self._connect()
        return self._client

    async def _connect(self) -> Client:
        timeout = self.connect_timeout.total_seconds()
        try:
            return await asyncio.wait_for(
                Client.connect(
                    self.address,
                    namespace=self.namespace,
                    connect_timeout=self.connect_timeout,
                    **{"data_converter": pydantic_data_converter, **self._options},
                ),
                timeout,
            )
        except (TimeoutError, RuntimeError, OSError, RPCError) as exc:
            reason = str(exc) or f"no answer within {timeout:g}s"
            logger.warning("Temporal is not reachable at %s: %s", self.address, reason)
            raise ApiError(
                503, f"Temporal is not reachable at {self.address} (namespace {self.namespace})"
            ) from exc

    async def check(self, timeout: timedelta) -> None:
        """Raise unless the frontend answers a health check within ``timeout``."""
        client = await self.client()
        serving = await asyncio.wait_for(
            client.service_client.check_health(timeout=timeout), timeout.total_seconds() + 1
        )
        if not serving:
            raise RuntimeError("Temporal frontend is up but not serving")
