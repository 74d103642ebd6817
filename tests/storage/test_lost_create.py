"""MinIO killed while a multipart upload is being created: CreateMultipartUpload took
effect, its answer never arrived. Nobody knows the upload's id, and a restarted
MinIO lists it only when asked for its exact key; the key's marker, written
before the create, lets clean-up find and abort it, whether the process that
wrote the marker lives on or was killed too.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import grpc
import pytest
from grpc import aio
from minio import Minio

from bench.bench_storage_throughput import start_storage_process
from bench.faults.s3_relay import S3Relay, Strike
from mediagen.stack.minio import LocalMinio, MinioEndpoint
from mediagen.v1 import storage_pb2_grpc
from storage_service.settings import MiB
from tests.storage.client import new_run, put
from tests.storage.conftest import start_storage, stop_storage, storage_settings
from tests.storage.test_outage import own_minio, restart_on_same_address

__all__ = ["own_minio"]
BUCKET = "lost-create"


def is_create(method: str, target: str) -> bool:
    query = urlsplit(target).query
    return method == "POST" and "uploads" in [part.split("=")[0] for part in query.split("&")]


def key_of(target: str) -> str:
    return unquote(urlsplit(target).path).split("/", 2)[2]


def killer(local: LocalMinio):
    def kill() -> None:
        assert local.process is not None
        local.process.kill()
        local.process.wait()

    return kill


def uploads_of(client: Minio, key: str) -> list[str]:
    """Asked with the exact key: the only listing that shows an upload which survived a restart."""
    return [u.upload_id for u in client._list_multipart_uploads(BUCKET, prefix=key).uploads if u.upload_id]


async def nothing_left(client: Minio, key: str, within: float = 60.0) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        markers = list(client.list_objects(BUCKET, "uploads/", recursive=True))
        if not markers and not uploads_of(client, key):
            return True
        await asyncio.sleep(0.2)
    return False


async def cut_off_at_create(stub: storage_pb2_grpc.StorageServiceAsyncStub, relay: S3Relay) -> str:
    """A 12 MiB PutMedia whose upload is created with the answer lost; the key it was for."""
    run_id = await new_run(stub)
    with pytest.raises(grpc.RpcError) as failed:
        await put(stub, run_id, os.urandom(12 * MiB))
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value.details()
    assert [e.status for e in relay.struck] == [200], "MinIO should have created the upload"
    return key_of(relay.struck[0].target)


async def test_lost_create_is_aborted_by_the_same_process_once_minio_is_back(own_minio: LocalMinio):
    assert own_minio.endpoint is not None
    direct = own_minio.endpoint.client()
    relay = S3Relay(own_minio.endpoint.endpoint, Strike(is_create, answered=True, then=killer(own_minio)))
    relayed = MinioEndpoint(await relay.start(), own_minio.endpoint.access_key, own_minio.endpoint.secret_key)
    server = await start_storage(storage_settings(relayed, BUCKET, lease_seconds=0.5), direct)
    try:
        key = await cut_off_at_create(server.stub, relay)
        restart_on_same_address(own_minio)
        assert await nothing_left(direct, key), f"an upload of {key} or its marker is still there"
    finally:
        await stop_storage(server)
        await relay.stop()


async def test_lost_create_of_a_killed_process_is_aborted_by_the_next(own_minio: LocalMinio, tmp_path: Path):
    assert own_minio.endpoint is not None
    direct = own_minio.endpoint.client()
    direct.make_bucket(BUCKET)
    relay = S3Relay(own_minio.endpoint.endpoint, Strike(is_create, answered=True, then=killer(own_minio)))
    relayed = MinioEndpoint(await relay.start(), own_minio.endpoint.access_key, own_minio.endpoint.secret_key)
    fast = {"MEDIAGEN_STORAGE_LEASE_SECONDS": "0.5"}
    first = await asyncio.to_thread(start_storage_process, relayed, BUCKET, tmp_path / "first", fast)
    second = None
    try:
        async with aio.insecure_channel(first.address) as channel:
            key = await cut_off_at_create(storage_pb2_grpc.StorageServiceStub(channel), relay)
        first.process.kill()
        restart_on_same_address(own_minio)
        assert uploads_of(direct, key), "the upload should have outlived both processes"
        second = await asyncio.to_thread(start_storage_process, relayed, BUCKET, tmp_path / "second", fast)
        assert await nothing_left(direct, key), f"an upload of {key} or its marker is still there"
    finally:
        if second is not None:
            second.stop()
        first.stop()
        await relay.stop()


def is_complete(method: str, target: str) -> bool:
    query = urlsplit(target).query
    return method == "POST" and "uploadId" in [part.split("=")[0] for part in query.split("&")]


async def test_complete_done_with_its_answer_lost_keeps_the_media_whole(own_minio: LocalMinio):
    """The write took effect though the caller heard UNAVAILABLE: once MinIO is back its claim is
    kept (not given back), and the repeat of the write is answered from the record."""
    assert own_minio.endpoint is not None
    direct = own_minio.endpoint.client()
    relay = S3Relay(own_minio.endpoint.endpoint, Strike(is_complete, answered=True, then=killer(own_minio)))
    relayed = MinioEndpoint(await relay.start(), own_minio.endpoint.access_key, own_minio.endpoint.secret_key)
    server = await start_storage(storage_settings(relayed, BUCKET, lease_seconds=0.5), direct)
    data = os.urandom(12 * MiB)
    try:
        run_id = await new_run(server.stub)
        with pytest.raises(grpc.RpcError) as failed:
            await put(server.stub, run_id, data, idempotency_key="once")
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value.details()
        assert [e.status for e in relay.struck] == [200], "MinIO should have completed the upload"
        key = key_of(relay.struck[0].target)
        restart_on_same_address(own_minio)
        assert await nothing_left(direct, key)
        record = await retried(lambda: put(server.stub, run_id, data, idempotency_key="once"))
        assert record.key == key
        assert record.descriptor.sha256 == hashlib.sha256(data).hexdigest()
        assert direct.stat_object(BUCKET, key).size == len(data)
    finally:
        await stop_storage(server)
        await relay.stop()


async def retried(call, within: float = 15.0):
    """The write's repeat, retried while storage is still settling (ABORTED or UNAVAILABLE)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            return await call()
        except grpc.RpcError as err:
            if err.code() not in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE):
                raise
            if asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.3)
