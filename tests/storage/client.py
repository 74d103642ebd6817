"""Driving the storage service the way a producer does, and checking what it left."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
from minio import Minio

from mediagen.scaffold.errors import StatusDetails, status_details, status_of_rpc_error
from mediagen.v1 import storage_pb2, storage_pb2_grpc


def header(run_id: str, output: int = 0, item: int = 0, **fields: object) -> storage_pb2.PutMediaRequest:
    return storage_pb2.PutMediaRequest(
        header=storage_pb2.MediaHeader(run_id=run_id, output_index=output, item_index=item, **fields)  # type: ignore[arg-type]
    )


def trailer_for(data: bytes) -> storage_pb2.PutMediaRequest:
    return storage_pb2.PutMediaRequest(
        trailer=storage_pb2.MediaTrailer(size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    )


def chunks_of(data: bytes, size: int = 256 * 1024) -> Iterable[storage_pb2.PutMediaRequest]:
    for at in range(0, len(data), size):
        yield storage_pb2.PutMediaRequest(chunk=data[at : at + size])


def whole(
    run_id: str, data: bytes, output: int = 0, with_trailer: bool = True
) -> storage_pb2.PutMediaRequest:
    """A small media as the one ``whole`` message of its stream."""
    media = storage_pb2.WholeMedia(header=header(run_id, output).header, data=data)
    if with_trailer:
        media.trailer.CopyFrom(trailer_for(data).trailer)
    return storage_pb2.PutMediaRequest(whole=media)


def media_stream(
    run_id: str, data: bytes, output: int = 0, item: int = 0, chunk: int = 256 * 1024, **fields: object
) -> list[storage_pb2.PutMediaRequest]:
    return [header(run_id, output, item, **fields), *chunks_of(data, chunk), trailer_for(data)]


async def as_async(
    requests: Iterable[storage_pb2.PutMediaRequest],
) -> AsyncIterator[storage_pb2.PutMediaRequest]:
    for request in requests:
        yield request


async def put(
    stub: storage_pb2_grpc.StorageServiceAsyncStub,
    run_id: str,
    data: bytes,
    output: int = 0,
    item: int = 0,
    **fields: Any,
) -> storage_pb2.MediaRecord:
    return await stub.PutMedia(as_async(media_stream(run_id, data, output, item, **fields)))


async def new_run(stub: storage_pb2_grpc.StorageServiceAsyncStub, run_id: str = "") -> str:
    run = await stub.CreateRun(storage_pb2.CreateRunRequest(run_id=run_id))
    return run.run_id


async def fetch(
    stub: storage_pb2_grpc.StorageServiceAsyncStub, media_id: str
) -> tuple[storage_pb2.MediaRecord, bytes]:
    record, body = None, bytearray()
    async for response in stub.GetMedia(storage_pb2.GetMediaRequest(media_id=media_id)):
        if response.WhichOneof("part") == "record":
            record = response.record
        else:
            body += response.chunk
    assert record is not None
    return record, bytes(body)


def failure(error: grpc.RpcError) -> StatusDetails:
    return status_details(status_of_rpc_error(error))


def fields_of(error: grpc.RpcError) -> list[str]:
    return [violation.field for violation in failure(error).violations]


def leftovers(minio: Minio, bucket: str, prefix: str = "runs/") -> tuple[list[str], list[str]]:
    """(objects other than run.json, unfinished multipart uploads) under ``prefix``."""
    objects = [o.object_name for o in minio.list_objects(bucket, prefix, recursive=True)]
    # MinIO matches an upload-listing prefix against whole keys only: filter here.
    uploads = [
        u.object_name
        for u in minio._list_multipart_uploads(bucket).uploads
        if u.object_name.startswith(prefix)
    ]
    return [o for o in objects if not o.endswith("/run.json")], uploads


async def wait_until_clean(
    minio: Minio, bucket: str, kept: list[str] | None = None, within: float = 10.0
) -> tuple[list[str], list[str]]:
    """Leftovers once clean-up had time to finish (it may outlive a cancelled call).

    ``kept`` are the objects that should remain; the wait ends early once only they do.
    """
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await asyncio.to_thread(leftovers, minio, bucket)
        if found == (kept or [], []) or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)
