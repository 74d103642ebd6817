"""Queue position reports for a waiting prompt, kept off the path to its completion.

A ``status`` push says only how many prompts the backend holds (every caller's); where ours
stands takes a ``GET /queue``, which is as slow as ComfyUI's loop is busy. Awaited in line, that
lookup delayed the handling of the events queued behind it, the final one included. So it runs
in the background, one at a time; it is skipped when the backend holds at most our prompt
(nothing can be ahead), and its answer is dropped once the prompt has started.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from generator_service.comfy.client import BackendUnreachable, ComfyClient
from mediagen.v1 import common_pb2

Emit = Callable[[common_pb2.Progress], Awaitable[None]]


class PositionReporter:
    def __init__(
        self, client: ComfyClient, prompt_id: str, nodes_total: int, waiting: Callable[[], bool]
    ) -> None:
        self._client, self._prompt_id, self._nodes_total = client, prompt_id, nodes_total
        self._waiting = waiting
        self._lookup: asyncio.Task[None] | None = None

    def on_status(self, queue_remaining: int, emit: Emit) -> None:
        """A ``status`` push: look our position up in the background if anything may be ahead."""
        if queue_remaining <= 1 or not self._waiting():
            return
        if self._lookup is None or self._lookup.done():
            self._lookup = asyncio.create_task(self._look_up(emit))

    async def report(self, position: int | None, emit: Emit) -> None:
        """Tell the caller how many jobs are ahead, while the prompt still waits."""
        if position and self._waiting():
            await emit(
                common_pb2.Progress(
                    stage=common_pb2.PROGRESS_STAGE_QUEUED,
                    queue_position=position,
                    nodes_total=self._nodes_total,
                )
            )

    async def close(self) -> None:
        if self._lookup is not None:
            self._lookup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lookup

    async def _look_up(self, emit: Emit) -> None:
        with contextlib.suppress(BackendUnreachable):
            await self.report((await self._client.queue()).position(self._prompt_id), emit)
