"""Queue position lookups for a waiting prompt, kept off the path to its completion, and paced.

A ``status`` push says only how many prompts the backend holds (every caller's); where ours
stands takes a ``GET /queue``, which is as slow as ComfyUI's loop is busy. Awaited in line, that
lookup delayed the handling of the events queued behind it, the final one included. So it runs
in the background, and its answer comes back as a :data:`POSITION` pseudo-event in the prompt's
own event queue, read in order with the pushes (the follower drops it once the prompt has
started). The follower skips the lookup when the backend holds at most our prompt (nothing can
be ahead).

Lookups are paced: at most about one per ``interval`` per prompt. Each push (a prompt queued
or started anywhere on the backend) would otherwise cost each waiting prompt a lookup and its
caller a progress message through every hop, although a queue that moves every 200 ms is no
better shown five times a second than twice. A push within ``interval`` of the last lookup is
answered by one lookup on the next tick of the loop's clock (a multiple of ``interval``), so
the answer is never older than the push, the newest position always reaches the caller, and the
waiting prompts of one backend ask at the same moments and share one ``GET /queue`` (see
:meth:`ComfyClient.queue`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math

from generator_service.comfy.client import BackendUnreachable, ComfyClient
from generator_service.comfy.events import Event
from mediagen.tasks import cancel_and_wait

POSITION = "queue_position"
"""Pseudo-event kind: ``data["position"]`` jobs are ahead of the prompt (a lookup's answer)."""


class PositionLookup:
    def __init__(
        self, client: ComfyClient, prompt_id: str, inbox: asyncio.Queue[Event], *, interval: float
    ) -> None:
        self._client, self._prompt_id, self._inbox = client, prompt_id, inbox
        self._interval = interval
        self._lookups: asyncio.Task[None] | None = None
        self._wanted = False
        """A push came that no lookup started since has answered."""
        self._last: float | None = None
        """Loop time of the last lookup's start."""

    def start(self) -> None:
        """Have the position looked up in the background: now, or on the next tick if one was
        looked up less than ``interval`` ago (one lookup answers every push before it)."""
        self._wanted = True
        if self._lookups is None or self._lookups.done():
            self._lookups = asyncio.create_task(self._look_up_while_wanted())

    async def close(self) -> None:
        if self._lookups is not None:
            await cancel_and_wait([self._lookups])

    async def _look_up_while_wanted(self) -> None:
        loop = asyncio.get_running_loop()
        while self._wanted:
            now = loop.time()
            if self._interval > 0 and self._last is not None and now - self._last < self._interval:
                await asyncio.sleep(math.ceil(now / self._interval) * self._interval - now)
            self._wanted = False
            self._last = loop.time()
            with contextlib.suppress(BackendUnreachable):
                position = (await self._client.queue()).position(self._prompt_id)
                if position:
                    self._inbox.put_nowait(Event(POSITION, {"position": position}))
