"""The PutMedia request stream, checked message by message.

The stream must be exactly: one header, chunks, one trailer, end. Anything
else is INVALID_ARGUMENT naming the part at fault, raised at the moment it is
seen so no byte after a protocol error is stored. The trailer only counts once
the caller has closed its side: data after the trailer voids the upload.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from mediagen.scaffold.errors import invalid_argument
from mediagen.v1 import storage_pb2


class MediaIntake:
    def __init__(self, requests: AsyncIterator[storage_pb2.PutMediaRequest]) -> None:
        self._requests = requests
        self._trailer: storage_pb2.MediaTrailer | None = None

    async def header(self) -> storage_pb2.MediaHeader:
        first = await anext(self._requests, None)
        if first is None:
            raise invalid_argument("header", "the stream was empty; it must start with a header")
        if first.WhichOneof("part") != "header":
            raise invalid_argument(
                "header", f"the first message must be the header, got a {first.WhichOneof('part')}"
            )
        return first.header

    async def chunks(self) -> AsyncIterator[bytes]:
        """The media bytes, until the trailer; the trailer is then kept for :meth:`trailer`."""
        async for request in self._requests:
            kind = request.WhichOneof("part")
            if kind == "chunk":
                if request.chunk:
                    yield request.chunk
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
        extra = await anext(self._requests, None)
        if extra is not None:
            kind = extra.WhichOneof("part") or "part"
            raise invalid_argument(kind, f"a {kind} arrived after the trailer")
        return self._trailer
