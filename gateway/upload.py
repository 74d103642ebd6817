"""One media file piped into ``StorageService.PutMedia`` as its chunks arrive.

Between the generator's stream and storage's stream sits a bounded queue of a
few chunks. When storage (or MinIO behind it) is slower than ComfyUI, the
queue fills, the gateway stops reading the generator's stream, and gRPC flow
control slows the generator's download from ComfyUI: memory stays flat
however large the file. If anything goes wrong before the trailer is sent,
the call is cancelled and storage leaves no object behind.

Chunks are queued already serialized (see :mod:`gateway.wire`): each one is
copied once, from the generator's message into storage's.

When storage fails while chunks are still being sent, it says so first in the
call's initial metadata (``mediagen-put-refused``, see
:mod:`storage_service.intake`) and waits for this side to close its stream
before it ends the call. The request stream therefore ends as soon as that
metadata arrives, and storage's own status (UNAVAILABLE when MinIO is down)
reaches the caller: a send failing on a call storage had already ended would
otherwise be recorded by gRPC as INTERNAL "Internal error from Core" over it.
The request stream also ends whenever the upload does, so gRPC's task that
consumes it never outlives the call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from grpc import aio

from gateway import wire
from gateway.errors import peer_error
from gateway.peers import PutMedia
from mediagen.rules import PUT_REFUSED_METADATA_KEY
from mediagen.scaffold.errors import ServiceError
from mediagen.tasks import cancel_and_wait
from mediagen.v1 import storage_pb2

REFUSED = PUT_REFUSED_METADATA_KEY
Part = bytes | storage_pb2.PutMediaRequest
"""One request of the call: a chunk already serialized, or the header or trailer message."""


@dataclass(frozen=True, slots=True)
class Complete:
    """Queued after the trailer: the request stream ends here."""


_COMPLETE = Complete()
Item = Part | Complete


class MediaUpload:
    def __init__(
        self,
        put_media: PutMedia,
        header: storage_pb2.MediaHeader,
        depth: int,
        timeout: float | None,
    ) -> None:
        self._queue: asyncio.Queue[Item] = asyncio.Queue(depth)
        self._queue.put_nowait(storage_pb2.PutMediaRequest(header=header))
        self._closed = asyncio.Event()  # no more requests: finished, refused by storage, or aborted
        self._call: aio.StreamUnaryCall[Part, storage_pb2.MediaRecord] = put_media(  # type: ignore[assignment]
            self._requests(), timeout=timeout
        )
        self._result = asyncio.ensure_future(self._await_record())
        self._watch = asyncio.ensure_future(self._close_when_refused())

    async def send(self, data: bytes | memoryview) -> None:
        await self._put(wire.encode_chunk(data))

    async def finish(self, size: int, sha256: str) -> storage_pb2.MediaRecord:
        await self._put(
            storage_pb2.PutMediaRequest(trailer=storage_pb2.MediaTrailer(size_bytes=size, sha256=sha256))
        )
        await self._put(_COMPLETE)
        return await self._result

    async def abort(self) -> None:
        """Cancel the call (storage then discards the partial upload); safe after finish."""
        self._closed.set()
        self._call.cancel()
        self._result.cancel()
        self._watch.cancel()
        await cancel_and_wait([self._result])

    async def _requests(self) -> AsyncIterator[Part]:
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            while True:
                if self._queue.empty():
                    got = asyncio.ensure_future(self._queue.get())
                    await asyncio.wait({got, closed}, return_when=asyncio.FIRST_COMPLETED)
                    if not got.done():
                        got.cancel()
                        return
                    item = got.result()
                elif self._closed.is_set():
                    return
                else:
                    item = self._queue.get_nowait()
                if isinstance(item, Complete):
                    return
                yield item
        finally:
            closed.cancel()

    async def _close_when_refused(self) -> None:
        """End the request stream as soon as storage says it has failed (see the module doc)."""
        with contextlib.suppress(Exception):
            metadata = await self._call.initial_metadata()
            if metadata is not None and any(key == REFUSED for key, _ in metadata):
                self._closed.set()

    async def _await_record(self) -> storage_pb2.MediaRecord:
        try:
            return await self._call
        except grpc.RpcError as err:
            raise peer_error(err, "storage") from None
        finally:
            self._closed.set()

    async def _put(self, item: Item) -> None:
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


class WholeUpload:
    """A small media sent to ``PutMedia`` as its one ``whole`` message (header, bytes, trailer).

    The request stream is complete before storage can fail, so none of :class:`MediaUpload`'s
    queue or early-refusal handling is needed; abort cancels the call like it.
    """

    def __init__(
        self, put_media: PutMedia, request: storage_pb2.PutMediaRequest, timeout: float | None
    ) -> None:
        self._call: aio.StreamUnaryCall[Part, storage_pb2.MediaRecord] = put_media(  # type: ignore[assignment]
            iter((request,)), timeout=timeout
        )

    async def send(self, data: bytes | memoryview) -> None:
        raise ServiceError(grpc.StatusCode.INTERNAL, "a whole media takes no chunks", "STREAM_OUT_OF_ORDER")

    async def finish(self, size: int, sha256: str) -> storage_pb2.MediaRecord:
        try:
            return await self._call
        except grpc.RpcError as err:
            raise peer_error(err, "storage") from None

    async def abort(self) -> None:
        self._call.cancel()
