"""A stream that does not arrive whole leaves no object and no unfinished upload.

Broken, cancelled, oversized and mismatched streams are tried on media that
fits one part (written only after the trailer) and on media that spans
several (a multipart upload that must be aborted).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading

import grpc
import pytest

from mediagen.stack.minio import MinioEndpoint
from mediagen.v1 import storage_pb2
from storage_service.settings import MiB
from tests.storage.client import as_async, chunks_of, failure, header, new_run, trailer_for, wait_until_clean
from tests.storage.conftest import StorageServer, start_storage, stop_storage, storage_settings

SMALL = os.urandom(3 * MiB)
LARGE = os.urandom(13 * MiB)
SIZES = {"one-part": SMALL, "multipart": LARGE}


def wrong_trailer(data: bytes, size_delta: int = 0, sha: str | None = None) -> storage_pb2.PutMediaRequest:
    digest = sha if sha is not None else hashlib.sha256(data).hexdigest()
    return storage_pb2.PutMediaRequest(
        trailer=storage_pb2.MediaTrailer(size_bytes=len(data) + size_delta, sha256=digest)
    )


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("mismatch", ["sha256", "size"])
async def test_trailer_mismatch_is_data_loss_and_leaves_nothing(
    storage_server: StorageServer, size, mismatch
):
    data = SIZES[size]
    run_id = await new_run(storage_server.stub)
    trailer = wrong_trailer(data, sha="0" * 64) if mismatch == "sha256" else wrong_trailer(data, size_delta=1)
    with pytest.raises(grpc.RpcError) as caught:
        await storage_server.stub.PutMedia(as_async([header(run_id), *chunks_of(data, MiB), trailer]))
    assert caught.value.code() == grpc.StatusCode.DATA_LOSS
    assert failure(caught.value).metadata["received_sha256"] == hashlib.sha256(data).hexdigest()
    assert await wait_until_clean(storage_server.minio, storage_server.bucket) == ([], [])


async def test_media_over_the_limit_is_resource_exhausted_naming_it(
    minio_endpoint: MinioEndpoint, bucket: str, minio_client
):
    server = await start_storage(
        storage_settings(minio_endpoint, bucket, max_media_bytes=12 * MiB), minio_client
    )
    try:
        run_id = await new_run(server.stub)
        with pytest.raises(grpc.RpcError) as caught:
            await server.stub.PutMedia(as_async([header(run_id), *chunks_of(LARGE, MiB), trailer_for(LARGE)]))
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_media_bytes=12582912" in (caught.value.details() or "")
        assert await wait_until_clean(server.minio, server.bucket) == ([], [])
    finally:
        await stop_storage(server)


async def broken_stream(run_id: str, data: bytes, after: int):
    yield header(run_id)
    for index, chunk in enumerate(chunks_of(data, MiB)):
        if index == after:
            raise ConnectionResetError("producer died")
        yield chunk


async def stalled_stream(run_id: str, data: bytes, after: int, reached: asyncio.Event):
    yield header(run_id)
    for index, chunk in enumerate(chunks_of(data, MiB)):
        if index == after:
            reached.set()
            await asyncio.Event().wait()
        yield chunk


@pytest.mark.parametrize("size", list(SIZES))
async def test_broken_producer_stream_leaves_nothing(storage_server: StorageServer, size):
    data = SIZES[size]
    run_id = await new_run(storage_server.stub)
    with pytest.raises((grpc.RpcError, ConnectionResetError, asyncio.CancelledError)):
        await storage_server.stub.PutMedia(broken_stream(run_id, data, after=len(data) // MiB - 1))
    assert await wait_until_clean(storage_server.minio, storage_server.bucket) == ([], [])


@pytest.mark.parametrize("size", list(SIZES))
async def test_caller_cancel_mid_stream_leaves_nothing(storage_server: StorageServer, size):
    data = SIZES[size]
    run_id = await new_run(storage_server.stub)
    reached = asyncio.Event()
    call = storage_server.stub.PutMedia(stalled_stream(run_id, data, len(data) // MiB - 1, reached))
    await reached.wait()
    await asyncio.sleep(0.2)  # let the server upload the parts it already has
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await wait_until_clean(storage_server.minio, storage_server.bucket) == ([], [])


def non_pool_threads() -> int:
    """Threads other than the service's bounded I/O pool and this test's own helpers."""
    return sum(1 for t in threading.enumerate() if not t.name.startswith(("storage-io", "asyncio_")))


async def test_twenty_injected_failures_leave_no_upload_and_no_thread(storage_server: StorageServer):
    stub = storage_server.stub
    run_id = await new_run(stub)
    await stub.PutMedia(as_async([header(run_id, output=99), *chunks_of(LARGE, MiB), trailer_for(LARGE)]))
    threads_before = non_pool_threads()

    async def one_failure(index: int) -> None:
        kind = index % 4
        if kind == 0:
            with pytest.raises((grpc.RpcError, ConnectionResetError, asyncio.CancelledError)):
                await stub.PutMedia(broken_stream(run_id, LARGE, after=7 + index % 5))
        elif kind == 1:
            reached = asyncio.Event()
            call = stub.PutMedia(stalled_stream(run_id, LARGE, 6 + index % 6, reached))
            await reached.wait()
            await asyncio.sleep(0.05)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
        else:
            trailer = wrong_trailer(LARGE, sha="f" * 64) if kind == 2 else wrong_trailer(LARGE, size_delta=-1)
            with pytest.raises(grpc.RpcError) as caught:
                await stub.PutMedia(as_async([header(run_id, output=index), *chunks_of(LARGE, MiB), trailer]))
            assert caught.value.code() == grpc.StatusCode.DATA_LOSS

    for batch in range(0, 20, 4):
        await asyncio.gather(*(one_failure(i) for i in range(batch, batch + 4)))

    kept = [f"runs/{run_id}/media/o099-i000.bin", f"runs/{run_id}/records/o099-i000.json"]
    assert await wait_until_clean(storage_server.minio, storage_server.bucket, kept) == (kept, [])
    assert non_pool_threads() <= threads_before
    pool = [t for t in threading.enumerate() if t.name.startswith("storage-io")]
    assert len(pool) <= storage_server.settings.io_threads
