"""A job that finds every backend full waits here for a place, in turn, for a bounded time.

Refusing at once made callers ask again and again (each refusal a whole call to check and
answer) and left a freed place empty until the next ask; waiting takes it at once. After
``place_wait_seconds`` the job is still refused BACKENDS_FULL, so its caller may go elsewhere.
"""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from mediagen.scaffold.channels import open_channel
from mediagen.v1 import generator_pb2_grpc
from tests.generator.support import run, template_request


def refusals() -> float:
    labels = {
        "grpc_type": "server_stream",
        "grpc_service": "mediagen.v1.GeneratorService",
        "grpc_method": "Generate",
        "grpc_code": "RESOURCE_EXHAUSTED",
    }
    return REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0


async def test_jobs_beyond_the_limit_wait_for_a_place(generator_factory, simulator):
    simulator.faults.node_delay_s["SaveImage"] = 0.2
    server = await generator_factory(
        comfyui_urls=simulator.url, max_queue_per_backend=1, place_wait_seconds=30
    )
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    refused_before = refusals()
    try:
        first = asyncio.ensure_future(run(stub, template_request("solid_image", width=40, height=40)))
        await asyncio.sleep(0.05)  # the first holds the only place
        later = [
            asyncio.ensure_future(run(stub, template_request("solid_image", width=41 + i, height=40)))
            for i in range(3)
        ]
        results = [await first, *await asyncio.gather(*later)]
    finally:
        await channel.close()
    assert refusals() == refused_before  # nobody was refused: each waited for the place
    for result in results:
        assert result.error is None, result.error
        assert result.completed is not None
    assert simulator.state()["prompts_run"] == 4


async def test_a_job_is_refused_once_place_wait_has_passed(generator_factory, simulator):
    simulator.faults.hang_nodes = ["EmptyImage"]
    server = await generator_factory(
        comfyui_urls=simulator.url, max_queue_per_backend=1, place_wait_seconds=0.3
    )
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    try:
        busy = stub.Generate(template_request("solid_image"), timeout=30)
        await busy.read()  # accepted: the only place is taken, and kept
        refused = await run(stub, template_request("solid_image", width=32, height=32))
        busy.cancel()
    finally:
        await channel.close()
    assert refused.error is not None
    assert refused.error.reason == "BACKENDS_FULL"
