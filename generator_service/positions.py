"""Queue position lookups for a waiting prompt, kept off the path to its completion.

A ``status`` push says only how many prompts the backend holds (every caller's); where ours
stands takes a ``GET /queue``, which is as slow as ComfyUI's loop is busy. Awaited in line, that
lookup delayed the handling of the events queued behind it, the final one included. So it runs
in the background, one at a time, and its answer comes back as a :data:`POSITION` pseudo-event in
the prompt's own event queue, read in order with the pushes (the follower drops it once the
prompt has started). The follower skips the lookup when the backend holds at most our prompt
(nothing can be ahead).
"""

from __future__ import annotations

import asyncio
import contextlib

from generator_service.comfy.client import BackendUnreachable, ComfyClient
from generator_service.comfy.events import Event
from mediagen.tasks import cancel_and_wait

POSITION = "queue_position"
"""Pseudo-event kind: ``data["position"]`` jobs are ahead of the prompt (a lookup's answer)."""


class PositionLookup:
    def __init__(self, client: ComfyClient, prompt_id: str, inbox: asyncio.Queue[Event]) -> None:
        self._client, self._prompt_id, self._inbox = client, prompt_id, inbox
        self._lookup: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Look the position up in the background unless a lookup is already under way."""
        if self._lookup is None or self._lookup.done():
            self._lookup = asyncio.create_task(self._look_up())

    async def close(self) -> None:
        if self._lookup is not None:
            await cancel_and_wait([self._lookup])

    async def _look_up(self) -> None:
        with contextlib.suppress(BackendUnreachable):
            position = (await self._client.queue()).position(self._prompt_id)
            if position:
                self._inbox.put_nowait(Event(POSITION, {"position": position}))
