"""A storage service running in this process against the session's real MinIO.

Other suites reuse it with ``from tests.storage.conftest import storage_server``
(plus the ``minio_endpoint`` and ``bucket`` fixtures it depends on).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from grpc import aio
from minio import Minio
from pydantic import SecretStr

from mediagen.scaffold import RunningServer, start_server
from mediagen.stack.minio import MinioEndpoint
from mediagen.v1 import storage_pb2_grpc
from storage_service.app import build_spec
from storage_service.settings import MiB, StorageSettings


def storage_settings(endpoint: MinioEndpoint, bucket: str, **overrides: object) -> StorageSettings:
    """Settings for a test service: small parts, so multipart paths run on a few MiB."""
    values: dict[str, object] = {
        "minio_endpoint": endpoint.endpoint,
        "minio_access_key": SecretStr(endpoint.access_key),
        "minio_secret_key": SecretStr(endpoint.secret_key),
        "minio_secure": endpoint.secure,
        "bucket": bucket,
        "part_size": 5 * MiB,
        "max_media_bytes": 64 * MiB,
        "port": 0,
        "log_format": "text",
        **overrides,
    }
    return StorageSettings.model_validate(values)


@dataclass
class StorageServer:
    running: RunningServer
    channel: aio.Channel
    stub: storage_pb2_grpc.StorageServiceAsyncStub
    bucket: str
    settings: StorageSettings
    minio: Minio

    @property
    def address(self) -> str:
        return self.running.address


async def start_storage(settings: StorageSettings, minio: Minio) -> StorageServer:
    running = await start_server(await build_spec(settings), settings)
    channel = aio.insecure_channel(running.address, options=[("grpc.max_receive_message_length", 16 * MiB)])
    stub = storage_pb2_grpc.StorageServiceStub(channel)
    return StorageServer(running, channel, stub, settings.bucket, settings, minio)


async def stop_storage(server: StorageServer) -> None:
    await server.channel.close()
    await server.running.stop(0)


@pytest.fixture
async def storage_server(
    minio_endpoint: MinioEndpoint, bucket: str, minio_client: Minio
) -> AsyncIterator[StorageServer]:
    """The storage service on an ephemeral port, writing to this test's own bucket."""
    server = await start_storage(storage_settings(minio_endpoint, bucket), minio_client)
    yield server
    await stop_storage(server)
