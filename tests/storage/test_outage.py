"""MinIO going away: callers get UNAVAILABLE within seconds, health turns
NOT_SERVING at once and SERVING again when MinIO is back, and an upload cut
off by the outage is aborted once MinIO answers again."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mediagen.ports import free_port
from mediagen.stack.minio import LocalMinio
from storage_service.settings import MiB
from tests.storage.client import chunks_of, header, leftovers, new_run, trailer_for, wait_until_clean
from tests.storage.conftest import start_storage, stop_storage, storage_settings


@pytest.fixture
def own_minio(tmp_path: Path) -> Iterator[LocalMinio]:
    local = LocalMinio(tmp_path / "own-minio")
    local.start()
    yield local
    local.stop()


def restart_on_same_address(local: LocalMinio) -> None:
    """Start MinIO again where it was, with the same data and credentials."""
    assert local.endpoint is not None
    local.stop()
    endpoint = local.endpoint
    env = {
        **os.environ,
        "MINIO_ROOT_USER": endpoint.access_key,
        "MINIO_ROOT_PASSWORD": endpoint.secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
    }
    local.process = subprocess.Popen(
        [
            str(local.binary),
            "server",
            str(local.data_dir),
            "--quiet",
            "--address",
            endpoint.endpoint,
            "--console-address",
            f"{local.host}:{free_port(local.host)}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    local._wait_ready(30)


async def health_of(channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return (await stub.Check(health_pb2.HealthCheckRequest(service=""))).status


async def eventually(condition, within: float = 15.0) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_minio_outage_is_unavailable_and_not_serving_until_it_is_back(own_minio: LocalMinio):
    assert own_minio.endpoint is not None
    client = own_minio.endpoint.client()
    server = await start_storage(storage_settings(own_minio.endpoint, "outage-bucket"), client)
    try:
        assert client.bucket_exists("outage-bucket")  # created at start-up
        assert await health_of(server.channel) == health_pb2.HealthCheckResponse.SERVING
        run_id = await new_run(server.stub)
        data = os.urandom(16 * MiB)
        reached, resume = asyncio.Event(), asyncio.Event()

        async def stream():
            yield header(run_id)
            for index, chunk in enumerate(chunks_of(data, MiB)):
                if index == 12:
                    reached.set()
                    await resume.wait()
                yield chunk
            yield trailer_for(data)

        upload = server.stub.PutMedia(stream())
        await reached.wait()
        await asyncio.sleep(0.3)
        assert leftovers(client, "outage-bucket")[1]  # an upload is under way
        own_minio.stop()
        resume.set()

        started = asyncio.get_running_loop().time()
        with pytest.raises(grpc.RpcError) as cut_off:
            await upload
        with pytest.raises(grpc.RpcError) as refused:
            await new_run(server.stub)
        assert asyncio.get_running_loop().time() - started < 10
        assert cut_off.value.code() == grpc.StatusCode.UNAVAILABLE
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert await health_of(server.channel) == health_pb2.HealthCheckResponse.NOT_SERVING

        restart_on_same_address(own_minio)
        assert await eventually(lambda: _is_serving(server.channel)), (
            "health did not return to SERVING after MinIO came back"
        )
        assert await wait_until_clean(client, "outage-bucket") == ([], [])  # the owed abort was made
        assert await new_run(server.stub)
    finally:
        await stop_storage(server)


async def _is_serving(channel) -> bool:
    return await health_of(channel) == health_pb2.HealthCheckResponse.SERVING
