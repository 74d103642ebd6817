"""The three services in this process over real gRPC, with the session's real MinIO and the
ComfyUI simulator, set up as the fuzz properties need them: storage capped at the fuzz media
limit, the anchor runs created, and a session that checks and counts every answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from minio import Minio

from bench.fuzz.cases import MAX_MEDIA_BYTES
from bench.fuzz.checks import Session
from bench.fuzz.known import KNOWN
from bench.fuzz.target import Target
from comfyui_sim import SimulatorHandle
from mediagen.scaffold import RunningServer
from mediagen.scaffold.channels import open_channel
from mediagen.stack.minio import MinioEndpoint
from mediagen.v1 import generator_pb2_grpc
from tests.gateway.conftest import generator, simulator, start_gateway, stop_gateway
from tests.storage.conftest import start_storage, stop_storage, storage_settings

__all__ = ["fuzz_session", "generator", "generator_stub", "simulator"]


@pytest.fixture
async def generator_stub(
    generator: RunningServer,
) -> AsyncIterator[generator_pb2_grpc.GeneratorServiceAsyncStub]:
    channel = open_channel(generator.address, max_message_bytes=16 * 1024 * 1024)
    yield generator_pb2_grpc.GeneratorServiceStub(channel)  # type: ignore[misc]
    await channel.close()


@pytest.fixture
async def fuzz_session(
    simulator: SimulatorHandle,
    generator: RunningServer,
    minio_endpoint: MinioEndpoint,
    bucket: str,
    minio_client: Minio,
) -> AsyncIterator[Session]:
    storage = await start_storage(
        storage_settings(minio_endpoint, bucket, max_media_bytes=MAX_MEDIA_BYTES), minio_client
    )
    gateway = await start_gateway(generator_target=generator.address, storage_target=storage.address)
    target = Target(
        gateway=gateway.running.address,
        generator=generator.address,
        storage=storage.address,
        minio=minio_client,
        bucket=bucket,
        simulator_url=simulator.url,
    )
    await target.open()
    await target.create_anchors()
    session = Session(target, KNOWN)
    yield session
    await target.close()
    await stop_gateway(gateway)
    await stop_storage(storage)
