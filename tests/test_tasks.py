"""Stopping a part's background tasks: all are cancelled before any is awaited, and what a
task raises while stopping is not raised again."""

from __future__ import annotations

import asyncio

from mediagen.tasks import cancel_and_wait


async def test_every_task_is_cancelled_and_has_ended_when_it_returns() -> None:
    cleaned: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append(name)

    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("broke while stopping") from None

    tasks = [asyncio.create_task(forever("a")), asyncio.create_task(fails_on_cancel())]
    tasks.append(asyncio.create_task(forever("b")))
    await asyncio.sleep(0)
    await cancel_and_wait(tasks)
    assert all(task.done() for task in tasks)
    assert sorted(cleaned) == ["a", "b"]
    assert isinstance(tasks[1].exception(), RuntimeError)


async def test_a_closer_told_to_stop_while_it_waits_stops() -> None:
    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)  # its own clean-up takes a moment
            raise

    slow = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    closer = asyncio.create_task(cancel_and_wait([slow]))
    await asyncio.sleep(0.05)
    closer.cancel()  # the closer itself is told to stop while it waits
    await asyncio.wait([closer], timeout=5)
    assert closer.cancelled(), "the closer's own cancellation was swallowed"
    await asyncio.wait([slow], timeout=5)
