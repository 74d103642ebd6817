"""Clean-up that must finish even when the caller that started it is cancelled.

A caller going away cancels its handler; the abort or rollback it was running
must still reach MinIO, or a partial upload or a dangling record stays behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("mediagen.storage.cleanup")
_running: set[asyncio.Future[None]] = set()  # strong references while they outlive their caller


async def finish_anyway(work: Coroutine[Any, Any, None], what: str) -> None:
    """Run ``work`` to its end; a failure is logged, never raised over the error that led here."""
    task = asyncio.ensure_future(work)
    _running.add(task)
    task.add_done_callback(lambda done: _settle(done, what))
    with contextlib.suppress(Exception):
        await asyncio.shield(task)


async def wait_for_cleanups(limit: float) -> None:
    """Let clean-up started by cancelled calls finish before the clients close."""
    await asyncio.sleep(0)  # handlers cancelled a moment ago start theirs now
    if _running:
        await asyncio.wait(set(_running), timeout=limit)


def _settle(task: asyncio.Future[None], what: str) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("%s failed: %s", what, task.exception())
