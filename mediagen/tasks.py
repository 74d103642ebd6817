"""Stopping the background tasks a service part owns, the same way everywhere.

A part that starts long-running tasks (watches, lease renewals, connection loops) stops them
at close: every one is cancelled first, so none waits on another that is still running, then
each is awaited so that its ``finally`` has run before the part lets go of what the tasks use
(a NATS connection, say). What a task raised while stopping changes nothing at that point and
is not raised again: the part is closing either way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel every task in ``tasks``, then wait for each to end."""
    owned = list(tasks)
    for task in owned:
        task.cancel()
    for task in owned:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
