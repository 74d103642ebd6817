"""One media file piped into ``StorageService.PutMedia`` as its chunks arrive.

Between the generator's stream and storage's stream sits a bounded queue of a
few chunks. When storage (or MinIO behind it) is slower than ComfyUI, the
queue fills, the gateway stops reading the generator's stream, and gRPC flow
control slows the generator's download from ComfyUI: memory stays flat
however large the file. If anything goes wrong before the trailer is sent,
the call is cancelled and storage leaves no object behind.

Chunks are queued already serialized (see :mod:`gateway.wire`): each one is
copied once, from the generator's message into storage's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
from grpc import aio

from gateway import wire
from gateway.errors import peer_error
from gateway.peers import PutMedia
from mediagen.scaffold.errors import ServiceError
from mediagen.v1 import storage_pb2

_END = None
Part = bytes | storage_pb2.PutMediaRequest


class MediaUpload:
    def __init__(
        self,
        put_media: PutMedia,
        header: storage_pb2.MediaHeader,
        depth: int,
        timeout: float | None,
    ) -> None:
        self._queue: asyncio.Queue[Part | None] = asyncio.Queue(depth)
        self._queue.put_nowait(storage_pb2.PutMediaRequest(header=header))
        self._call: aio.StreamUnaryCall[Part, storage_pb2.MediaRecord] = put_media(  # type: ignore[assignment]
            self._requests(), timeout=timeout
        )
        self._result = asyncio.ensure_future(self._await_record())

    async def send(self, data: bytes | memoryview) -> None:
        await self._put(wire.encode_chunk(data))

    async def finish(self, size: int, sha256: str) -> storage_pb2.MediaRecord:
        await self._put(
            storage_pb2.PutMediaRequest(trailer=storage_pb2.MediaTrailer(size_bytes=size, sha256=sha256))
        )
        await self._put(_END)
        return await self._result

    async def abort(self) -> None:
        """Cancel the call (storage then discards the partial upload); safe after finish."""
        self._call.cancel()
        self._result.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._result

    async def _requests(self) -> AsyncIterator[Part]:
        while (item := await self._queue.get()) is not _END:
            yield item

    async def _await_record(self) -> storage_pb2.MediaRecord:
        try:
            return await self._call
        except grpc.RpcError as err:
            raise peer_error(err, "storage") from None

    async def _put(self, item: Part | None) -> None:
        """Queue ``item``, waiting for room, unless storage ended the call first."""
        if self._result.done():
            await self._result  # raises storage's error; an early success is a protocol error
            raise ServiceError(
                grpc.StatusCode.INTERNAL,
                "storage answered before the upload was complete",
                "STORAGE_ENDED_EARLY",
            )
        if not self._queue.full():
            self._queue.put_nowait(item)
            return
        put = asyncio.ensure_future(self._queue.put(item))
        try:
            await asyncio.wait({put, self._result}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            put.cancel()
        if not put.done() or put.cancelled():
            await self._put(item)
