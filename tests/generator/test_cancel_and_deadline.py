"""Deadlines and caller cancellation stop exactly the job concerned on ComfyUI, quickly."""

from __future__ import annotations

import asyncio
import time

import grpc

from generator_service.journal import FileJournal
from mediagen.scaffold.channels import open_channel
from mediagen.v1 import generator_pb2_grpc
from tests.generator.conftest import start_generator
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
    await wait_until(lambda: idle(simulator), within=2.0)  # the cancel goes on after the answer
    assert simulator.state()["interrupts"] >= 1


async def test_the_deadline_is_answered_on_time_while_a_node_ignores_the_interrupt(generator_stub, simulator):
    """A node deaf to interrupts for seconds delays ComfyUI's freedom, not the caller's answer.

    The interrupt is repeated with backoff (not every few milliseconds) until the node gives up,
    then the prompt's history and journal entry are cleaned up in the background.
    """
    deaf_for = 2.5
    simulator.faults.uninterruptible_s = {"ImageInvert": deaf_for}
    simulator.faults.hang_nodes = ["ImageInvert"]
    started = time.monotonic()
    result = await run(generator_stub, template_request("inverted_image", timeout=1.0, width=8, height=8))
    answered = time.monotonic() - started
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.DEADLINE_EXCEEDED, result.error
    assert answered < 1.0 + deaf_for / 2, "the caller waited for the node"
    prompt_id = result.accepted.prompt_id
    assert simulator.state()["running"] == [prompt_id], "the node is still deaf"
    await wait_until(lambda: idle(simulator), within=deaf_for + 2)
    await wait_until(lambda: simulator.state()["history_size"] == 0, within=3.0)
    assert 1 <= simulator.state()["interrupts"] <= 5, simulator.state()["interrupts"]


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
    await wait_until(lambda: result.accepted.prompt_id not in simulator.state()["pending"], within=2.0)
    assert len(simulator.state()["running"]) == 1
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


async def test_shutdown_abandons_an_unconfirmed_cancel_to_the_journal(simulator, tmp_path):
    """Stopping gives the cancels ``cancel_wait_seconds``; what they could not confirm is recovered later."""
    deaf_for, cancel_wait = 4.0, 1.0
    simulator.faults.uninterruptible_s = {"ImageInvert": deaf_for}
    simulator.faults.hang_nodes = ["ImageInvert"]
    state = tmp_path / "state"
    server = await start_generator(
        comfyui_urls=simulator.url, state_dir=state, cancel_wait_seconds=cancel_wait
    )
    channel = open_channel(server.address)
    try:
        stub = generator_pb2_grpc.GeneratorServiceStub(channel)
        call = stub.Generate(template_request("inverted_image", width=8, height=8), timeout=60)
        seen = await events_until(call, running_node("ImageInvert"))
        prompt_id = seen[0].accepted.prompt_id
        stopping = time.monotonic()
        await server.stop(0.2)
        took = time.monotonic() - stopping
    finally:
        await channel.close()
    assert took < 0.2 + cancel_wait + 3, f"shutdown took {took:.1f}s"
    assert simulator.state()["running"] == [prompt_id], "still deaf: the cancel was not confirmed"
    assert [e.prompt_id for e in FileJournal(state).orphans(simulator.url)] == [prompt_id]

    successor = await start_generator(comfyui_urls=simulator.url, state_dir=state)
    try:
        await wait_until(lambda: not any(state.iterdir()), within=deaf_for + 5)
        assert idle(simulator)
        assert simulator.state()["history_size"] == 0
    finally:
        await successor.stop(1.0)
