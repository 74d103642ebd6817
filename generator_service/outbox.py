"""The hand-off between a job and the gRPC call that streams its events.

A job puts ``GenerateEvent``s, then exactly one last item: :class:`Ended` after a success or
:class:`Failed` with the status to end the call with. Media chunks wait for room (a small
capacity), so a slow caller slows the download instead of filling memory. Progress reports never
wait: one that finds an unsent report at the tail replaces it (the contract allows coalescing),
so a backlog of progress writes can never delay the job from noticing completion.

Progress is also paced: a report of the stage last sent goes out at most once per
``progress_interval``, the newest one when the interval ends, and a held one that anything
else follows (the media, the end) is dropped as out of date. A new stage (queued,
executing, transferring) goes out at once. Each report costs a message through every hop to the
caller, and a node that reports each of its steps, or a graph whose nodes take milliseconds,
would otherwise cost one each; a person watching sees no difference at two reports a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeGuard, assert_never

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
    def __init__(self, capacity: int = 2, progress_interval: float = 0.0) -> None:
        self._items: deque[Item] = deque()
        self._capacity = capacity
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._progress_interval = progress_interval
        self._progress_stage: int | None = None
        """The stage of the last report sent (None: none sent yet)."""
        self._progress_due = 0.0
        """Loop time from which a report of that stage may go out."""

    def push_progress(self, event: generator_pb2.GenerateEvent) -> None:
        if self._items and _is_progress(self._items[-1]):
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
        loop = asyncio.get_running_loop()
        while True:
            while not self._items:
                self._readable.clear()
                await self._readable.wait()
            head = self._items[0]
            if _is_progress(head):
                stage = head.progress.stage
                wait = self._progress_due - loop.time() if stage == self._progress_stage else 0.0
                if wait > 0:
                    if len(self._items) > 1:
                        self._items.popleft()  # held, and something newer follows: out of date
                        continue
                    self._readable.clear()  # a newer report or anything else ends the wait early
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._readable.wait(), wait)
                    continue
                self._progress_stage = stage
                self._progress_due = loop.time() + self._progress_interval
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


def _is_progress(item: Item) -> TypeGuard[generator_pb2.GenerateEvent]:
    return isinstance(item, generator_pb2.GenerateEvent) and item.HasField("progress")
