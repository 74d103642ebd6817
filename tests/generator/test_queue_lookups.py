"""Queue look-ups asked together share one ``GET /queue``; each answer is read after its ask.

Every ``status`` push makes each waiting job of a backend ask where it stands; one request per
job made the backend build, and the generator parse, the whole queue once per waiting job.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from comfyui_sim.server import SimulatorHandle
from generator_service.comfy.client import ComfyClient
from mediagen.scaffold.channels import open_channel
from mediagen.v1 import common_pb2, generator_pb2_grpc
from tests.generator.support import template_request, wait_until


def _graph(index: int) -> dict[str, object]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": index},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": f"q{index}"}},
    }


async def _follow_positions(call: Any, positions: list[int]) -> None:
    """Every queue position the caller is told: the accepted event's, then each QUEUED report's."""
    async for event in call:
        if event.HasField("accepted"):
            positions.append(event.accepted.queue_position)
        elif event.HasField("progress") and event.progress.stage == common_pb2.PROGRESS_STAGE_QUEUED:
            positions.append(event.progress.queue_position)


@contextlib.asynccontextmanager
async def _queued_behind_a_running_job(
    stub: generator_pb2_grpc.GeneratorServiceAsyncStub,
) -> AsyncIterator[list[int]]:
    """One job running (its node hangs), a second one queued behind it at position 1; yields the
    positions the second's caller is told, as they come."""
    positions: list[int] = []
    first = stub.Generate(template_request("solid_image"), timeout=30)
    second: Any = None
    follower: asyncio.Future[None] | None = None
    try:
        await first.read()  # accepted, and executing for as long as the test needs
        second = stub.Generate(template_request("solid_image", width=32, height=32), timeout=30)
        follower = asyncio.ensure_future(_follow_positions(second, positions))
        await wait_until(lambda: positions == [1])
        yield positions
    finally:
        if follower is not None:
            follower.cancel()
        first.cancel()
        if second is not None:
            second.cancel()


def _lookups(simulator: SimulatorHandle) -> int:
    return int(simulator.state()["queue_requests"])  # type: ignore[call-overload]


async def test_lookups_asked_together_share_one_request(simulator: SimulatorHandle) -> None:
    simulator.faults.hang_nodes = ["EmptyImage"]  # every prompt stays queued
    client = ComfyClient(simulator.url)
    try:
        prompt_ids = [str(uuid.uuid4()) for _ in range(4)]
        for index, prompt_id in enumerate(prompt_ids):
            await client.submit(_graph(index), "queue-test", prompt_id)
        before = _lookups(simulator)
        answers = await asyncio.gather(*(client.queue() for _ in range(8)))
        assert _lookups(simulator) == before + 1
        assert [answers[0].position(p) for p in prompt_ids] == [0, 1, 2, 3]
        assert all(answer == answers[0] for answer in answers)
    finally:
        await client.close()


async def test_an_ask_made_while_a_lookup_is_on_the_wire_gets_a_later_answer(
    simulator: SimulatorHandle,
) -> None:
    simulator.faults.hang_nodes = ["EmptyImage"]
    client = ComfyClient(simulator.url)
    try:
        first_prompt, later_prompt = str(uuid.uuid4()), str(uuid.uuid4())
        await client.submit(_graph(0), "queue-test", first_prompt)
        before = _lookups(simulator)
        on_the_wire = asyncio.ensure_future(client.queue())
        await asyncio.sleep(0)  # the first look-up is sent
        await client.submit(_graph(1), "queue-test", later_prompt)
        asked_after = await asyncio.gather(*(client.queue() for _ in range(3)))
        earlier = await on_the_wire
        assert earlier.contains(first_prompt)
        assert all(answer.position(later_prompt) == 1 for answer in asked_after)
        assert _lookups(simulator) == before + 2
    finally:
        await client.close()


async def test_a_cancelled_asker_does_not_cancel_the_others_lookup(simulator: SimulatorHandle) -> None:
    client = ComfyClient(simulator.url)
    try:
        impatient = asyncio.ensure_future(client.queue())
        patient = asyncio.ensure_future(client.queue())
        await asyncio.sleep(0)
        impatient.cancel()
        assert (await patient).pending == ()
        assert impatient.cancelled()
    finally:
        await client.close()


async def test_a_queue_position_is_reported_again_only_when_it_changes(generator_factory, simulator):
    """Prompts of other callers queued behind ours make status pushes and look-ups, not reports
    (the accepted event's position is the first report)."""
    simulator.faults.hang_nodes = ["EmptyImage"]
    server = await generator_factory(comfyui_urls=simulator.url)
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    others = ComfyClient(simulator.url)
    try:
        async with _queued_behind_a_running_job(stub) as positions:
            looked_up = _lookups(simulator)
            for index in range(3):
                await others.submit(_graph(index), "someone-else", str(uuid.uuid4()))
                await wait_until(lambda index=index: _lookups(simulator) > looked_up + index)
            await asyncio.sleep(0.2)  # any report those look-ups made is out by now
            assert positions == [1]
    finally:
        simulator.faults.hang_nodes = []
        await others.close()
        await channel.close()


async def test_queue_positions_are_paced_and_the_newest_one_follows(generator_factory, simulator):
    """Five prompts put ahead of ours, 0.1 s apart, make five pushes: within one interval, a
    couple of look-ups and reports answer them all, and the last report is where the prompt
    stands after the five (unpaced, each push is a look-up and a report: 1, 2, 3, 4, 5, 6)."""
    simulator.faults.hang_nodes = ["EmptyImage"]
    server = await generator_factory(
        comfyui_urls=simulator.url, progress_interval_seconds=2.0, watchdog_quiet_seconds=30.0
    )
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)

    async def put_ahead(session: aiohttp.ClientSession, index: int) -> None:
        body = {
            "prompt": _graph(index),
            "client_id": "someone-else",
            "prompt_id": str(uuid.uuid4()),
            "front": True,
        }
        async with session.post(f"{simulator.url}/prompt", json=body) as answer:
            assert answer.status == 200, await answer.text()

    try:
        async with _queued_behind_a_running_job(stub) as positions:
            looked_up = _lookups(simulator)
            async with aiohttp.ClientSession() as session:
                for index in range(5):
                    await put_ahead(session, index)
                    await asyncio.sleep(0.1)
            await wait_until(lambda: positions[-1] == 6, within=10)
            await asyncio.sleep(2.2)  # a further paced look-up would have reported by now
            assert positions[-1] == 6
            assert len(positions) <= 3, positions  # [1, 6] or [1, <some>, 6], not one report per push
            assert _lookups(simulator) - looked_up <= 3
    finally:
        await channel.close()
