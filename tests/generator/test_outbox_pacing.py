"""Progress is paced in the outbox: one report per stage and interval, the newest following.

A graph whose nodes take milliseconds, or a node reporting each step, would otherwise cost a
message through every hop to the caller per report.
"""

from __future__ import annotations

import asyncio

from generator_service.outbox import Ended, Outbox
from mediagen.v1 import common_pb2, generator_pb2

EXECUTING = common_pb2.PROGRESS_STAGE_EXECUTING
QUEUED = common_pb2.PROGRESS_STAGE_QUEUED


def report(
    stage: common_pb2.ProgressStage.ValueType, value: int = 0, position: int = 0
) -> generator_pb2.GenerateEvent:
    return generator_pb2.GenerateEvent(
        progress=common_pb2.Progress(stage=stage, value=value, queue_position=position)
    )


async def test_reports_of_one_stage_within_the_interval_go_out_as_the_newest_at_its_end() -> None:
    outbox = Outbox(progress_interval=0.3)
    outbox.push_progress(report(EXECUTING, value=1))
    assert await outbox.get() == report(EXECUTING, value=1)
    for value in (2, 3, 4):
        outbox.push_progress(report(EXECUTING, value=value))
    assert await asyncio.wait_for(outbox.get(), 5) == report(EXECUTING, value=4)


async def test_a_report_is_held_until_the_interval_ends() -> None:
    outbox = Outbox(progress_interval=30)
    outbox.push_progress(report(EXECUTING, value=1))
    await outbox.get()
    outbox.push_progress(report(EXECUTING, value=2))
    held = asyncio.ensure_future(outbox.get())
    await asyncio.sleep(0.2)
    assert not held.done()
    held.cancel()


async def test_a_new_stage_goes_out_at_once() -> None:
    outbox = Outbox(progress_interval=30)
    outbox.push_progress(report(QUEUED, position=3))
    assert await outbox.get() == report(QUEUED, position=3)
    outbox.push_progress(report(EXECUTING, value=1))
    assert await asyncio.wait_for(outbox.get(), 5) == report(EXECUTING, value=1)


async def test_a_held_report_that_anything_follows_is_dropped() -> None:
    outbox = Outbox(progress_interval=30)
    outbox.push_progress(report(EXECUTING, value=1))
    await outbox.get()
    outbox.push_progress(report(EXECUTING, value=2))
    completed = generator_pb2.GenerateEvent(completed=generator_pb2.Completed())

    async def read_all() -> list[object]:
        return [event async for event in outbox.events()]

    reading = asyncio.ensure_future(read_all())
    await outbox.put(completed)
    await outbox.put(Ended())
    assert await asyncio.wait_for(reading, 5) == [completed]


async def test_unpaced_every_report_not_yet_replaced_goes_out() -> None:
    outbox = Outbox()
    outbox.push_progress(report(EXECUTING, value=1))
    assert await outbox.get() == report(EXECUTING, value=1)
    outbox.push_progress(report(EXECUTING, value=2))
    assert await asyncio.wait_for(outbox.get(), 5) == report(EXECUTING, value=2)
