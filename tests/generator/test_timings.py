"""What a platform adds up per backend: execution timings that never overlap, and queue load counted once."""

from __future__ import annotations

import asyncio
import time

from mediagen.scaffold.channels import open_channel
from mediagen.v1 import generator_pb2, generator_pb2_grpc
from tests.generator.support import run, template_request

NODE_SECONDS = 0.15
JOBS = 6
LIMIT = 4


async def test_executions_on_one_backend_add_up_to_no_more_than_the_wall_time(generator_stub, simulator):
    simulator.faults.node_delay_s["SaveImage"] = NODE_SECONDS
    started = time.monotonic()
    results = await asyncio.gather(
        *(run(generator_stub, template_request("solid_image", width=64 + i, height=64)) for i in range(JOBS))
    )
    wall = time.monotonic() - started
    executions = []
    for result in results:
        assert result.error is None, result.error
        assert result.completed is not None
        executions.append(result.completed.timings.execution.ToTimedelta().total_seconds())
    # The backend runs one prompt at a time, so its executions are disjoint intervals of the
    # wall time (start push to completion push).
    assert all(execution > 0 for execution in executions), executions
    assert sum(executions) <= wall, (executions, wall)


async def test_our_queued_prompts_count_once_against_the_backend_limit(generator_factory, simulator):
    simulator.faults.node_delay_s["SaveImage"] = 0.5
    server = await generator_factory(
        comfyui_urls=simulator.url, max_queue_per_backend=LIMIT, place_wait_seconds=0
    )  # refused as soon as the limit is reached, not once a place frees
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    calls = []
    try:
        for i in range(LIMIT):
            call = stub.Generate(template_request("solid_image", width=64 + i, height=64), timeout=30)
            first = await call.read()
            assert isinstance(first, generator_pb2.GenerateEvent)
            assert first.HasField("accepted"), first  # each queued behind the ones before it
            calls.append(call)
        refused = await run(stub, template_request("solid_image", width=32, height=32))
        assert refused.error is not None
        assert refused.error.reason == "BACKENDS_FULL"
        assert refused.error.metadata["max_queue_per_backend"] == str(LIMIT)
    finally:
        for call in calls:
            call.cancel()
        await channel.close()
