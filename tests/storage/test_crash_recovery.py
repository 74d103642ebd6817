"""A storage process killed mid-stream cannot abort its upload; the next one does."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import grpc
import pytest
from grpc import aio

from bench.bench_storage_throughput import start_storage_process
from mediagen.stack.minio import MinioEndpoint
from mediagen.v1 import storage_pb2_grpc
from storage_service.settings import MiB
from tests.storage.client import chunks_of, header, leftovers, new_run, trailer_for, wait_until_clean

FAST_LEASE = {"MEDIAGEN_STORAGE_LEASE_SECONDS": "0.5"}


async def test_upload_of_a_killed_process_is_aborted_by_the_next(
    minio_endpoint: MinioEndpoint, bucket: str, minio_client, tmp_path: Path
):
    first = start_storage_process(minio_endpoint, bucket, tmp_path / "first", FAST_LEASE)
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

    second = start_storage_process(minio_endpoint, bucket, tmp_path / "second", FAST_LEASE)
    try:
        assert await wait_until_clean(minio_client, bucket) == ([], [])
    finally:
        second.stop()


def open_upload_runs(minio_client, bucket: str) -> set[str]:
    """Run ids with an unfinished upload."""
    return {u.object_name.split("/")[1] for u in minio_client._list_multipart_uploads(bucket).uploads}


async def test_dead_replicas_upload_is_aborted_within_seconds_and_a_live_ones_is_kept(
    minio_endpoint: MinioEndpoint, bucket: str, minio_client, tmp_path: Path
):
    """A replica killed mid-stream: another aborts its upload once its lease goes stale, and only that."""
    dead = start_storage_process(minio_endpoint, bucket, tmp_path / "dead", FAST_LEASE)
    live = start_storage_process(minio_endpoint, bucket, tmp_path / "live", FAST_LEASE)
    data = os.urandom(12 * MiB)
    release = asyncio.Event()

    async def stalled(run_id: str, reached: asyncio.Event):
        yield header(run_id)
        for index, chunk in enumerate(chunks_of(data, MiB)):
            if index == 10:
                reached.set()
                await release.wait()
            yield chunk
        yield trailer_for(data)

    try:
        async with (
            aio.insecure_channel(dead.address) as to_dead,
            aio.insecure_channel(live.address) as to_live,
        ):
            dead_stub, live_stub = (storage_pb2_grpc.StorageServiceStub(c) for c in (to_dead, to_live))
            dead_run, live_run = await new_run(dead_stub), await new_run(live_stub)
            reached = [asyncio.Event(), asyncio.Event()]
            doomed = dead_stub.PutMedia(stalled(dead_run, reached[0]))
            kept = live_stub.PutMedia(stalled(live_run, reached[1]))
            await asyncio.gather(*(r.wait() for r in reached))
            await asyncio.sleep(0.5)
            assert open_upload_runs(minio_client, bucket) == {dead_run, live_run}
            dead.process.kill()
            killed_at = time.monotonic()
            with pytest.raises(grpc.RpcError):
                await doomed
            while dead_run in open_upload_runs(minio_client, bucket):
                assert time.monotonic() - killed_at < 10, "the dead replica's upload is still open"
                await asyncio.sleep(0.1)
            await asyncio.sleep(2.0)  # several more sweeps: the live replica's upload stays
            assert open_upload_runs(minio_client, bucket) == {live_run}
            release.set()
            record = await kept
            assert record.descriptor.size_bytes == len(data)
        assert await wait_until_clean(
            minio_client, bucket, kept=[record.key, f"runs/{live_run}/records/o000-i000.json"]
        ) == (
            [record.key, f"runs/{live_run}/records/o000-i000.json"],
            [],
        )
    finally:
        live.stop()
    assert [o.object_name for o in minio_client.list_objects(bucket, "uploads/", recursive=True)] == []
