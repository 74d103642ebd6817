"""Deadlines and caller cancellation stop exactly the job concerned on ComfyUI, quickly."""

from __future__ import annotations

import asyncio
import time

import grpc

from tests.generator.support import events_until, run, running_node, template_request, wait_until


def idle(simulator) -> bool:
    state = simulator.state()
    return not state["running"] and not state["pending"]


async def test_hanging_node_hits_the_deadline_and_the_prompt_is_interrupted(generator_stub, simulator):
    simulator.faults.hang_nodes = ["ImageInvert"]
    started = time.monotonic()
    result = await run(generator_stub, template_request("inverted_image", timeout=1.0, width=8, height=8))
    elapsed = time.monotonic() - started
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.DEADLINE_EXCEEDED, result.error
    assert result.error.metadata["prompt_id"] == result.accepted.prompt_id
    assert 1.0 <= elapsed < 3.0
    assert idle(simulator)
    assert simulator.state()["interrupts"] >= 1


async def test_grpc_deadline_also_cancels_the_prompt(generator_stub, simulator):
    simulator.faults.hang_nodes = ["ImageInvert"]
    result = await run(generator_stub, template_request("inverted_image", width=8, height=8), timeout=1.0)
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    await wait_until(lambda: idle(simulator), within=2.0)


async def test_deadline_while_pending_deletes_it_from_the_queue(generator_stub, simulator):
    simulator.faults.hang_nodes = ["ImageInvert"]
    blocker = generator_stub.Generate(template_request("inverted_image", width=8, height=8), timeout=30)
    await events_until(blocker, running_node("ImageInvert"))
    result = await run(generator_stub, template_request("solid_image", timeout=1.0, width=8, height=8))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    state = simulator.state()
    assert result.accepted.prompt_id not in state["pending"]
    assert len(state["running"]) == 1
    blocker.cancel()
    await wait_until(lambda: idle(simulator), within=2.0)


async def test_caller_cancel_stops_the_running_prompt_within_a_second(generator_stub, simulator):
    simulator.faults.hang_nodes = ["ImageInvert"]
    call = generator_stub.Generate(template_request("inverted_image", width=8, height=8), timeout=30)
    seen = await events_until(call, running_node("ImageInvert"))
    prompt_id = seen[0].accepted.prompt_id
    assert simulator.state()["running"] == [prompt_id]
    call.cancel()
    took = await wait_until(lambda: idle(simulator), within=1.0)
    print(f"\ncancel noticed by ComfyUI after {took * 1000:.0f} ms")


async def test_one_caller_cancelling_leaves_the_other_callers_job_alone(generator_stub, simulator):
    """A pending job cancelled while another runs; then the running one cancelled, the pending survives."""
    simulator.faults.node_delay_s = {"ImageInvert": 0.6}
    first = asyncio.create_task(run(generator_stub, template_request("inverted_image", width=8, height=8)))
    await wait_until(lambda: simulator.state()["running"], within=2.0)
    doomed = generator_stub.Generate(template_request("solid_image", width=8, height=8), timeout=30)
    seen = await events_until(doomed, lambda e: e.HasField("accepted"))
    await wait_until(lambda: seen[0].accepted.prompt_id in simulator.state()["pending"])
    doomed.cancel()
    await wait_until(lambda: not simulator.state()["pending"], within=1.0)
    result = await first
    assert result.error is None
    assert result.completed is not None
    assert simulator.state()["interrupts"] == 0

    simulator.faults.hang_nodes = ["ImageInvert"]
    fresh = template_request("inverted_image", width=8, height=8, color=7)  # not answered from cache
    running = generator_stub.Generate(fresh, timeout=30)
    await events_until(running, running_node("ImageInvert"))
    survivor = asyncio.create_task(run(generator_stub, template_request("solid_image", width=8, height=8)))
    await wait_until(lambda: simulator.state()["pending"])
    running.cancel()
    result = await survivor
    assert result.error is None
    assert result.completed is not None
    assert result.completed.media_count == 1


async def test_caller_cancel_while_streaming_media_stops_cleanly(generator_stub, simulator):
    simulator.faults.view_bytes_per_s = 2_000_000
    call = generator_stub.Generate(template_request("large_image", size_bytes=3_000_000), timeout=30)
    await events_until(call, lambda e: e.HasField("media_chunk"))
    call.cancel()
    await wait_until(lambda: idle(simulator) and simulator.state()["history_size"] == 0, within=2.0)


async def test_timeout_is_capped_by_configuration(generator_factory, simulator):
    from mediagen.scaffold.channels import open_channel
    from mediagen.v1 import generator_pb2_grpc

    server = await generator_factory(comfyui_urls=simulator.url, max_timeout=0.5, default_timeout=0.5)
    channel = open_channel(server.address)
    simulator.faults.hang_nodes = ["ImageInvert"]
    try:
        stub = generator_pb2_grpc.GeneratorServiceStub(channel)
        result = await run(stub, template_request("inverted_image", timeout=100, width=8, height=8))
        assert result.error is not None
        assert result.error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        await channel.close()
