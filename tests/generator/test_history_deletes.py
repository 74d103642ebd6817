"""History entries are deleted in shared requests: one ``POST /history`` per batch, not per prompt.

A job's last request to ComfyUI drops its history entry; under load many jobs of one backend
finish together, and each request costs the generator more CPU than a longer list does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from comfyui_sim.server import SimulatorHandle
from generator_service.comfy.client import ComfyClient
from tests.generator.support import wait_until


def _graph(index: int) -> dict[str, object]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": index},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": f"h{index}"}},
    }


async def _finished_prompts(client: ComfyClient, simulator: SimulatorHandle, count: int) -> list[str]:
    prompt_ids = [str(uuid.uuid4()) for _ in range(count)]
    for index, prompt_id in enumerate(prompt_ids):
        await client.submit(_graph(index), "history-test", prompt_id)
    await wait_until(lambda: simulator.state()["history_size"] == count, within=10.0)
    return prompt_ids


@pytest.fixture
async def client(simulator: SimulatorHandle) -> AsyncIterator[ComfyClient]:
    client = ComfyClient(simulator.url)
    yield client
    await client.close()


async def test_deletes_asked_together_go_in_one_request(
    client: ComfyClient, simulator: SimulatorHandle
) -> None:
    prompt_ids = await _finished_prompts(client, simulator, 6)
    await asyncio.gather(*(client.delete_history(prompt_id) for prompt_id in prompt_ids[:5]))
    state = simulator.state()
    assert state["history_size"] == 1  # only the one not asked for is left
    assert state["history_delete_requests"] == 1
    assert await client.history(prompt_ids[5]) is not None


async def test_deletes_asked_while_one_is_on_the_wire_go_in_the_next_request(
    client: ComfyClient, simulator: SimulatorHandle
) -> None:
    prompt_ids = await _finished_prompts(client, simulator, 5)
    first = asyncio.ensure_future(client.delete_history(prompt_ids[0]))
    await asyncio.sleep(0)  # the first request is sent
    await asyncio.gather(first, *(client.delete_history(prompt_id) for prompt_id in prompt_ids[1:]))
    state = simulator.state()
    assert state["history_size"] == 0
    assert state["history_delete_requests"] == 2


async def test_a_cancelled_waiter_does_not_cancel_the_others_delete(
    client: ComfyClient, simulator: SimulatorHandle
) -> None:
    prompt_ids = await _finished_prompts(client, simulator, 2)
    impatient = asyncio.ensure_future(client.delete_history(prompt_ids[0]))
    patient = asyncio.ensure_future(client.delete_history(prompt_ids[1]))
    await asyncio.sleep(0)
    impatient.cancel()
    await patient
    assert simulator.state()["history_size"] == 0
    assert impatient.cancelled()
