"""Receiving media bytes: counted, hashed, probed and sent on part by part.

Memory stays bounded by the part size whatever the media size: bytes gather
as the chunks that make up one part, full parts go to a multipart upload
that keeps at most a couple in flight. A part after the first is sent as
those chunks, never joined into one buffer (the first is joined once, to be
probed). Media that fits in one part is kept whole and
written with a single PUT only after its trailer checks out, so an object
never exists before the whole stream has been verified.

The format is probed from bounded bytes (see :mod:`storage_service.probe`):
media held whole is probed whole; larger media is probed from its first part
when the upload starts (that sets the object's metadata) and again at the end
from the first :data:`HEAD_BYTES`, the last :data:`TAIL_BYTES` and the size,
for facts that only the end of a file holds (an MP4 index written last, the
last Ogg page). The tail is kept as references to the last chunks received,
never copied until the end.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import grpc

from mediagen.hashing import StreamHash
from mediagen.scaffold import ServiceError
from mediagen.scaffold.errors import invalid_argument
from mediagen.v1 import storage_pb2
from storage_service.probe import Probe, sniff, sniff_whole

HEAD_BYTES = 1024 * 1024
TAIL_BYTES = 256 * 1024


Chunk = bytes | memoryview
PartData = bytes | list[memoryview]
"""A part: one buffer, or the views of the chunks that make it up, in order."""


class PartSink(Protocol):
    """Where full parts go: a multipart upload, or nowhere (:class:`Discard`)."""

    async def add(self, data: PartData) -> None: ...


class Discard:
    """Parts of media already stored: counted and hashed for the comparison, then dropped."""

    async def add(self, data: PartData) -> None:
        return None


StartUpload = Callable[[Probe], Awaitable[PartSink]]


@dataclass
class Received:
    size: int
    sha256: str
    probe: Probe
    # The whole media when it fit in one part (nothing written yet), else b"".
    data: bytes = b""


async def receive(
    chunks: AsyncIterator[Chunk], limit: int, part_size: int, start: StartUpload | None
) -> Received:
    """Consume ``chunks``; without ``start`` the bytes are only counted and hashed."""
    digest, size = StreamHash(), 0
    parts = PartBuffer(part_size, start)
    tail = Tail(TAIL_BYTES)
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        await digest.update(chunk)
        tail.add(chunk)
        if start is not None:
            await parts.add(chunk)
    if size == 0:
        raise invalid_argument("chunk", "the media is empty")
    if parts.upload is None or parts.probe is None:
        whole = parts.take()
        return Received(size, await digest.hexdigest(), sniff_whole(whole), whole)
    await parts.upload.add(parts.take_pieces())
    final = sniff(parts.head, tail.bytes(), size)
    # The upload's key was named after the first part's format: the record must agree with it.
    probe = final if final.format == parts.probe.format else parts.probe
    return Received(size, await digest.hexdigest(), probe)


class Tail:
    """The last ``limit`` bytes of a stream, kept as the chunks that hold them."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: collections.deque[Chunk] = collections.deque()
        self._held = 0

    def add(self, chunk: Chunk) -> None:
        self._chunks.append(chunk)
        self._held += len(chunk)
        while self._held - len(self._chunks[0]) >= self._limit:
            self._held -= len(self._chunks.popleft())

    def bytes(self) -> bytes:
        return b"".join(self._chunks)[-self._limit :]


class PartBuffer:
    """Chunks gathered into parts of exactly ``part_size`` bytes, as views of the chunks.

    A part goes out only once a byte beyond it has arrived, so media of
    exactly one part is still written in one PUT after its trailer. Only the
    first part of a multipart upload (probed) and media held whole are joined.
    """

    def __init__(self, part_size: int, start: StartUpload | None) -> None:
        self._part_size = part_size
        self._start = start
        self._pieces: list[memoryview] = []
        self._filled = 0
        self.upload: PartSink | None = None
        self.probe: Probe | None = None
        self.head = b""  # the first HEAD_BYTES of the first part sent

    async def add(self, chunk: Chunk) -> None:
        view = memoryview(chunk)
        while view:
            if self._filled == self._part_size:
                await self._send()
            piece = view[: self._part_size - self._filled]
            self._pieces.append(piece)
            self._filled += len(piece)
            view = view[len(piece) :]

    def take(self) -> bytes:
        """The pieces gathered so far, joined."""
        return b"".join(self.take_pieces())

    def take_pieces(self) -> list[memoryview]:
        pieces = self._pieces
        self._pieces, self._filled = [], 0
        return pieces

    async def _send(self) -> None:
        if self.upload is None:
            assert self._start is not None
            part = self.take()
            self.probe = sniff(part)
            self.head = part[:HEAD_BYTES]
            self.upload = await self._start(self.probe)
            await self.upload.add(part)
        else:
            await self.upload.add(self.take_pieces())


def too_large(limit: int) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"media exceeds the limit of max_media_bytes={limit} bytes",
        reason="MEDIA_TOO_LARGE",
        metadata={"max_media_bytes": str(limit)},
    )


def check_trailer(trailer: storage_pb2.MediaTrailer, received: Received) -> None:
    """DATA_LOSS when the bytes are not what the producer says it sent."""
    expected_sha = trailer.sha256.lower()
    if trailer.size_bytes != received.size or expected_sha != received.sha256:
        raise ServiceError(
            grpc.StatusCode.DATA_LOSS,
            f"received {received.size} bytes with sha256 {received.sha256}, "
            f"the trailer says {trailer.size_bytes} bytes with sha256 {expected_sha or '(none)'}",
            reason="CHECKSUM_MISMATCH",
            metadata={"received_sha256": received.sha256, "received_size": str(received.size)},
        )
