"""The hand-off between a job and the gRPC call that streams its events.

A job puts ``GenerateEvent``s, then exactly one last item: :class:`Ended` after a success or
:class:`Failed` with the status to end the call with. Media chunks wait for room (a small
capacity), so a slow caller slows the download instead of filling memory. Progress reports never
wait: one that finds an unsent report at the tail replaces it (the contract allows coalescing),
so a backlog of progress writes can never delay the job from noticing completion.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import assert_never

from generator_service.wire import EncodedChunk, OutEvent
from mediagen.scaffold import ServiceError
from mediagen.v1 import generator_pb2


@dataclass(frozen=True, slots=True)
class Ended:
    """The job succeeded; nothing follows."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The job failed; the call ends with ``error``'s status and nothing follows."""

    error: ServiceError


Last = Ended | Failed
"""What a job puts last."""
Item = OutEvent | Ended | Failed


class Outbox:
    def __init__(self, capacity: int = 2) -> None:
        self._items: deque[Item] = deque()
        self._capacity = capacity
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def push_progress(self, event: generator_pb2.GenerateEvent) -> None:
        tail = self._items[-1] if self._items else None
        if isinstance(tail, generator_pb2.GenerateEvent) and tail.HasField("progress"):
            self._items[-1] = event
        else:
            self._items.append(event)
        self._readable.set()

    async def put(self, item: Item) -> None:
        """Queue an event or the last item; waits while full."""
        while len(self._items) >= self._capacity:
            self._writable.clear()
            await self._writable.wait()
        self._items.append(item)
        self._readable.set()

    async def get(self) -> Item:
        while not self._items:
            self._readable.clear()
            await self._readable.wait()
        item = self._items.popleft()
        if len(self._items) < self._capacity:
            self._writable.set()
        return item

    async def events(self) -> AsyncIterator[OutEvent]:
        """The events for the caller, until the last item; a failure's status is raised here."""
        while True:
            item = await self.get()
            match item:
                case generator_pb2.GenerateEvent() | EncodedChunk():
                    yield item
                case Failed(error=error):
                    raise error
                case Ended():
                    return
                case _:
                    assert_never(item)
