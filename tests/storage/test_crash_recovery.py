"""A storage process killed mid-stream cannot abort its upload; the next one does."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from grpc import aio

from bench.bench_storage_throughput import start_storage_process
from mediagen.stack.minio import MinioEndpoint
from mediagen.v1 import storage_pb2_grpc
from storage_service.settings import MiB
from storage_service.store.sweeper import UploadSweeper
from tests.storage.client import chunks_of, header, leftovers, new_run, wait_until_clean
from tests.storage.conftest import StorageServer

ABANDON_AT_ONCE = {"MEDIAGEN_STORAGE_ABANDONED_UPLOAD_AGE": "0"}


async def test_upload_of_a_killed_process_is_aborted_by_the_next(
    minio_endpoint: MinioEndpoint, bucket: str, minio_client, tmp_path: Path
):
    first = start_storage_process(minio_endpoint, bucket, tmp_path / "first", ABANDON_AT_ONCE)
    reached = asyncio.Event()
    data = os.urandom(12 * MiB)

    async def stalled():
        yield header(run_id)
        for index, chunk in enumerate(chunks_of(data, MiB)):
            if index == 10:
                reached.set()
                await asyncio.Event().wait()
            yield chunk

    async with aio.insecure_channel(first.address) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        run_id = await new_run(stub)
        call = stub.PutMedia(stalled())
        await reached.wait()
        await asyncio.sleep(0.5)
        first.process.kill()
        with pytest.raises(grpc.RpcError):
            await call
    assert leftovers(minio_client, bucket)[1], "the killed process should have left an upload"

    second = start_storage_process(minio_endpoint, bucket, tmp_path / "second", ABANDON_AT_ONCE)
    try:
        assert await wait_until_clean(minio_client, bucket) == ([], [])
    finally:
        second.stop()


async def test_sweep_spares_young_uploads_and_this_process_own(storage_server: StorageServer):
    store_client, bucket = storage_server.minio, storage_server.bucket
    foreign = store_client._create_multipart_upload(bucket, "runs/x/media/o000-i000.bin", {})
    store = storage_server.running.spec.servicers[0][2]._store  # the service's own store
    own = await store.start_upload("runs/x/media/o001-i000.bin", {})
    try:
        assert await UploadSweeper(store, timedelta(hours=1)).sweep() == 0
        assert await UploadSweeper(store, timedelta(0)).sweep() == 1
        remaining = [u.upload_id for u in store_client._list_multipart_uploads(bucket).uploads]
        assert remaining == [own]
        assert foreign not in remaining
    finally:
        await store.abort_upload("runs/x/media/o001-i000.bin", own)
