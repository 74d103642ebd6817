"""Stopping the background tasks a service part owns, the same way everywhere.

A part that starts long-running tasks (watches, lease renewals, connection loops, event
outboxes) stops them at close: every one is cancelled first, so none waits on another that
is still running, then each is awaited so that its ``finally`` has run before the part lets
go of what the tasks use (a NATS connection, say). What a task raised while stopping changes
nothing at that point and is not raised again: the part is closing either way.

The one thing never swallowed is the cancellation of the task doing the closing: awaiting a
cancelled task raises CancelledError whether that task or the closer was cancelled, and
suppressing it blindly lets a closer that was itself told to stop carry on, and wait, forever
for things that will not happen any more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel every task in ``tasks``, then wait for each to end."""
    owned = list(tasks)
    for task in owned:
        task.cancel()
    for task in owned:
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception:  # noqa: BLE001 - the part is closing; see the module's docstring
            pass
