"""A gateway in this process between a real storage and a real generator.

Storage writes to the test's own bucket in the session's real MinIO; the
generator drives a ComfyUI simulator whose fault knobs are reset after every
test. All three servers listen on ephemeral ports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from grpc import aio
from minio import Minio

from comfyui_sim import SimulatorConfig, SimulatorHandle, start_simulator
from gateway.app import build_spec
from gateway.settings import GatewaySettings
from generator_service.app import build_spec as build_generator
from generator_service.settings import GeneratorSettings
from mediagen.scaffold import RunningServer, start_server
from mediagen.stack.minio import MinioEndpoint
from mediagen.v1 import gateway_pb2_grpc
from tests.storage.conftest import StorageServer, start_storage, stop_storage, storage_settings

MiB = 1024 * 1024


@pytest.fixture(scope="session")
async def simulator(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SimulatorHandle]:
    data_dir = tmp_path_factory.mktemp("comfyui")
    handle = await start_simulator(SimulatorConfig(port=0, data_dir=data_dir))
    yield handle
    await handle.stop()


@pytest.fixture
def sim(simulator: SimulatorHandle) -> Iterator[SimulatorHandle]:
    """The simulator with default knobs again after the test."""
    yield simulator
    simulator.faults.reset()


@pytest.fixture(scope="session")
async def generator(simulator: SimulatorHandle) -> AsyncIterator[RunningServer]:
    settings = GeneratorSettings.model_validate(
        {"comfyui_urls": simulator.url, "port": 0, "log_format": "text", "max_queue_per_backend": 2}
    )
    running = await start_server(await build_generator(settings), settings)
    yield running
    await running.stop(0)


@pytest.fixture
async def storage(
    minio_endpoint: MinioEndpoint, bucket: str, minio_client: Minio
) -> AsyncIterator[StorageServer]:
    server = await start_storage(
        storage_settings(minio_endpoint, bucket, max_media_bytes=256 * MiB), minio_client
    )
    yield server
    await stop_storage(server)


@dataclass
class Gateway:
    running: RunningServer
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub
    channel: aio.Channel
    settings: GatewaySettings


async def start_gateway(**values: object) -> Gateway:
    # Durable runs off unless a test asks for them (with its own nats-server).
    settings = GatewaySettings.model_validate({"port": 0, "log_format": "text", "nats_url": "", **values})
    running = await start_server(await build_spec(settings), settings)
    channel = aio.insecure_channel(running.address)
    return Gateway(running, gateway_pb2_grpc.GatewayServiceStub(channel), channel, settings)  # type: ignore[arg-type]


async def stop_gateway(gateway: Gateway) -> None:
    await gateway.channel.close()
    await gateway.running.stop(0)


@pytest.fixture
async def gateway(generator: RunningServer, storage: StorageServer) -> AsyncIterator[Gateway]:
    started = await start_gateway(generator_target=generator.address, storage_target=storage.address)
    yield started
    await stop_gateway(started)


def sim_output_file(sim: SimulatorHandle, filename: str) -> Path:
    """The file the simulator wrote for an output, found by its name."""
    matches = list((Path(sim.data_dir) / "output").rglob(filename))
    assert len(matches) == 1, f"expected one {filename} in the simulator's output, found {matches}"
    return matches[0]
