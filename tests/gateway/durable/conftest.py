"""Durable-run tests: a real nats-server with JetStream, a gateway (or several) on top.

The server (the session's, from tests/conftest.py) is shared; each test gets its own
stream and bucket names (``nats_prefix``), so tests never see each other's runs.
Storage, the generator and the ComfyUI simulator are the gateway tests' own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from mediagen.scaffold import RunningServer
from mediagen.stack.nats import NatsEndpoint
from tests.gateway.conftest import Gateway, start_gateway, stop_gateway
from tests.storage.conftest import StorageServer


@pytest.fixture
def nats_server(nats_endpoint: NatsEndpoint) -> NatsEndpoint:
    """The session's real nats-server (see tests/conftest.py)."""
    return nats_endpoint


@pytest.fixture
def nats_prefix() -> str:
    return f"T{uuid.uuid4().hex[:10].upper()}"


def run_settings(nats_server: NatsEndpoint, prefix: str, **values: object) -> dict[str, object]:
    return {
        "nats_url": nats_server.url,
        "nats_prefix": prefix,
        "claim_seconds": 3.0,
        "requeue_delay": 0.5,
        **values,
    }


async def start_run_gateway(
    generator: RunningServer, storage: StorageServer, nats_server: NatsEndpoint, prefix: str, **values: object
) -> Gateway:
    gateway = await start_gateway(
        generator_target=generator.address,
        storage_target=storage.address,
        **run_settings(nats_server, prefix, **values),
    )
    await wait_connected(gateway)
    return gateway


async def wait_connected(gateway: Gateway, within: float = 15.0) -> None:
    """The engine connects in the background; tests start once it has."""
    from mediagen.v1 import gateway_pb2

    deadline = time.monotonic() + within
    while True:
        try:
            await gateway.stub.ListRuns(gateway_pb2.ListRunsRequest(page_size=1))
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@pytest.fixture
async def runs_gateway(
    generator: RunningServer, storage: StorageServer, nats_server: NatsEndpoint, nats_prefix: str
) -> AsyncIterator[Gateway]:
    gateway = await start_run_gateway(generator, storage, nats_server, nats_prefix)
    yield gateway
    await stop_gateway(gateway)
