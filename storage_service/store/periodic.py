"""A piece of upkeep run every few seconds in the background until the service stops.

A failing round is logged and the next one runs on time: MinIO being away is
the health check's to report, and upkeep simply resumes when it is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mediagen.tasks import cancel_and_wait

log = logging.getLogger("mediagen.storage.upkeep")


class Periodic:
    def __init__(self, work: Callable[[], Awaitable[Any]], every: float, what: str) -> None:
        self._work = work
        self._every = every
        self._what = what
        self._task = asyncio.create_task(self._loop(), name=what)

    async def stop(self) -> None:
        await cancel_and_wait([self._task])

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await self._work()
            except Exception as exc:  # noqa: BLE001 - one failed round must not end the upkeep
                log.debug("%s failed: %s", self._what, exc)
