"""The PutMedia request stream, checked message by message.

The stream must be exactly: one header, chunks, one trailer, end; or one
``whole`` message (header, bytes and trailer of a small file), end. Anything
else is INVALID_ARGUMENT naming the part at fault, raised at the moment it is
seen so no byte after a protocol error is stored. The trailer only counts once
the caller has closed its side: data after the trailer voids the upload.

A call that fails while the caller is still sending is not ended at once.
gRPC clients record a send that fails because the call just ended as
INTERNAL "Internal error from Core", and that can overwrite the status the
service sent (UNAVAILABLE, NOT_FOUND...). So the service first tells the
caller it has failed, in the call's initial metadata (:data:`REFUSED`, with
the status code), then reads and drops what the caller still sends until it
closes its side (at most :data:`DRAIN_SECONDS`), and only then ends the call
with its status. A caller that stops sending on :data:`REFUSED` (the gateway
does) gets the real status within milliseconds; any other caller gets it once
its stream ends.

Nearly every message is a chunk, so :func:`decode_request` (the method's
deserializer, see :mod:`storage_service.app`) returns a chunk as a view into
the received bytes instead of a parsed message: parsing would copy the bytes
into protobuf's arena and reading ``chunk`` would copy them out again.
Anything that is not plainly one chunk field is left to protobuf.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from mediagen.rules import PUT_REFUSED_METADATA_KEY
from mediagen.scaffold.errors import invalid_argument
from mediagen.v1 import storage_pb2

REFUSED = PUT_REFUSED_METADATA_KEY
DRAIN_SECONDS = 10.0
_CHUNK_TAG = 0x12  # PutMediaRequest.chunk: field 2, length-delimited
Request = storage_pb2.PutMediaRequest | memoryview


def decode_request(raw: bytes) -> Request:
    """A message that is exactly one ``chunk`` field as a view of its data, else the parsed message."""
    if raw[:1] == b"\x12":
        length, shift, pos = 0, 0, 1
        while pos < len(raw) and shift < 35:
            byte = raw[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                if pos + length == len(raw):
                    return memoryview(raw)[pos:]
                break
    return storage_pb2.PutMediaRequest.FromString(raw)


class MediaIntake:
    def __init__(self, requests: AsyncIterator[Request]) -> None:
        self._requests = requests
        self._trailer: storage_pb2.MediaTrailer | None = None
        self._whole: storage_pb2.WholeMedia | None = None
        self.closed_by_caller = False

    async def _next(self) -> Request | None:
        request = await anext(self._requests, None)
        self.closed_by_caller = request is None
        return request

    async def drain(self, limit: float = DRAIN_SECONDS) -> None:
        """Read and drop requests until the caller closes its side, for at most ``limit`` seconds."""

        async def to_the_end() -> None:
            while not self.closed_by_caller and await self._next() is not None:
                pass

        with contextlib.suppress(Exception):
            await asyncio.wait_for(to_the_end(), limit)

    async def header(self) -> storage_pb2.MediaHeader:
        first = await self._next()
        if first is None:
            raise invalid_argument("header", "the stream was empty; it must start with a header")
        kind = _kind(first)
        if kind == "whole":
            assert isinstance(first, storage_pb2.PutMediaRequest)
            if not first.whole.HasField("trailer"):
                raise invalid_argument("whole.trailer", "a whole media must carry its trailer")
            self._whole = first.whole
            return first.whole.header
        if kind != "header":
            raise invalid_argument("header", f"the first message must be the header, got a {kind}")
        assert isinstance(first, storage_pb2.PutMediaRequest)
        return first.header

    async def chunks(self) -> AsyncIterator[memoryview | bytes]:
        """The media bytes, until the trailer; the trailer is then kept for :meth:`trailer`."""
        if self._whole is not None:
            if self._whole.data:
                yield self._whole.data
            self._trailer = self._whole.trailer
            return
        while (request := await self._next()) is not None:
            if isinstance(request, memoryview):
                if request:
                    yield request
                continue
            kind = request.WhichOneof("part")
            if kind == "chunk":
                if chunk := request.chunk:
                    yield chunk
            elif kind == "trailer":
                self._trailer = request.trailer
                return
            else:
                raise invalid_argument(
                    kind or "part", f"unexpected {kind or 'empty message'} after the header"
                )
        raise invalid_argument("trailer", "the stream ended without a trailer")

    async def trailer(self) -> storage_pb2.MediaTrailer:
        """The trailer, once the caller has closed the stream with nothing after it."""
        if self._trailer is None:
            raise invalid_argument("trailer", "the stream ended without a trailer")
        extra = await self._next()
        if extra is not None:
            kind = _kind(extra) or "part"
            raise invalid_argument(kind, f"a {kind} arrived after the trailer")
        return self._trailer


def _kind(request: Request) -> str | None:
    return "chunk" if isinstance(request, memoryview) else request.WhichOneof("part")
