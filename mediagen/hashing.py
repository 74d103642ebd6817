"""The sha256 of a byte stream, computed beside the event loop rather than on it.

Hashing is the largest piece of work per byte left in the services that relay media, and on
the event loop it stalls every other stream and the socket reads and writes of this one. hashlib
releases the GIL for large buffers, so batches of chunks are hashed in a worker thread, one batch
at a time and in order, while the loop goes on receiving and sending. At most two batches are
held (the one being hashed and the one filling), so memory stays bounded by ``batch_bytes``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

Chunk = bytes | memoryview
BATCH_BYTES = 2 * 1024 * 1024


class StreamHash:
    def __init__(self, batch_bytes: int = BATCH_BYTES) -> None:
        self._digest = hashlib.sha256()
        self._batch_bytes = batch_bytes
        self._batch: list[Chunk] = []
        self._held = 0
        self._running: asyncio.Future[None] | None = None

    async def update(self, chunk: Chunk) -> None:
        """Hash ``chunk`` after every chunk before it; waits while a full batch is still hashing."""
        self._batch.append(chunk)
        self._held += len(chunk)
        if self._held >= self._batch_bytes:
            await self._hand_over()

    async def hexdigest(self) -> str:
        await self._hand_over()
        if self._running is not None:
            await self._running
        return self._digest.hexdigest()

    async def _hand_over(self) -> None:
        if self._running is not None:
            await self._running
            self._running = None
        if self._batch:
            batch, self._batch, self._held = self._batch, [], 0
            loop = asyncio.get_running_loop()
            self._running = loop.run_in_executor(None, _update, self._digest, batch)


def _update(digest: hashlib._Hash, chunks: Sequence[Chunk]) -> None:
    for chunk in chunks:
        digest.update(chunk)
