"""Lost events, silent sockets, bad downloads and a full or dead backend: never a hang, never silent."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import httpx
import pytest

from mediagen.scaffold.channels import open_channel
from mediagen.v1 import generator_pb2_grpc
from tests.generator.support import events_until, run, running_node, sha256, template_request, wait_until


async def test_websocket_dropped_mid_job_the_job_still_completes(generator_stub, simulator):
    simulator.faults.step_delay_s = 0.02
    simulator.faults.drop_ws_on_node = ["KSampler"]
    result = await run(
        generator_stub, template_request("sd15_txt2img", prompt="x", steps=10, width=64, height=64)
    )
    assert result.error is None, result.error
    assert result.completed is not None
    assert result.completed.media_count == 1
    assert simulator.state()["ws_drops"] >= 1


async def test_silent_websocket_is_caught_by_the_watchdog(generator_stub, simulator):
    """Per-prompt events never arrive: the /history cross-check after 1 s of quiet finds the result."""
    simulator.faults.silent_prompts = True
    started = time.monotonic()
    result = await run(generator_stub, template_request("solid_image", width=8, height=8))
    assert result.error is None, result.error
    assert result.completed is not None
    assert result.completed.media_count == 1
    assert time.monotonic() - started < 2.5


async def test_pending_prompt_with_empty_history_is_not_taken_for_lost(generator_stub, simulator):
    """/history says {} for pending prompts too: while /queue lists it, the job keeps waiting."""
    simulator.faults.silent_prompts = True
    simulator.faults.node_delay_s = {"ImageInvert": 2.5}
    first = asyncio.create_task(run(generator_stub, template_request("inverted_image", width=8, height=8)))
    await wait_until(lambda: simulator.state()["running"])
    second = await run(generator_stub, template_request("solid_image", width=8, height=8))
    assert second.error is None, second.error
    assert (await first).error is None


async def test_prompt_deleted_by_someone_else_is_reported_lost_not_waited_on(generator_stub, simulator):
    simulator.faults.hang_nodes = ["ImageInvert"]
    blocker = generator_stub.Generate(template_request("inverted_image", width=8, height=8), timeout=30)
    await events_until(blocker, running_node("ImageInvert"))
    victim = generator_stub.Generate(template_request("solid_image", width=8, height=8), timeout=30)
    seen = await events_until(victim, lambda e: e.HasField("accepted"))
    async with httpx.AsyncClient(base_url=simulator.url) as http:
        await http.post("/queue", json={"delete": [seen[0].accepted.prompt_id]})
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        async for _ in victim:
            pass
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "neither queued" in (caught.value.details() or "")
    assert time.monotonic() - started < 2.0
    blocker.cancel()


async def test_truncated_download_is_data_loss_not_a_short_file(generator_stub, simulator):
    simulator.faults.view_truncate_after = 100_000
    result = await run(generator_stub, template_request("large_image", size_bytes=400_000))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.DATA_LOSS, result.error
    assert result.error.reason == "TRUNCATED_DOWNLOAD"
    assert int(result.error.metadata["received_bytes"]) < int(result.error.metadata["expected_bytes"])
    assert not any(e.HasField("media_end") for e in result.events)


async def test_corrupted_download_reports_the_sha256_of_the_bytes_sent(generator_stub, simulator):
    """Same length, wrong content: the sha256 describes what was sent, so the receiver's check fails."""
    simulator.faults.view_corrupt = True
    result = await run(generator_stub, template_request("large_image", size_bytes=50_000))
    assert result.error is None
    [media] = result.media
    assert media.end is not None
    assert media.end.sha256 == sha256(media.data)
    on_disk = next(Path(simulator.data_dir, "output").rglob(media.start.filename)).read_bytes()  # noqa: ASYNC240
    assert len(on_disk) == len(media.data)
    assert sha256(on_disk) != media.end.sha256


async def test_full_backend_answers_resource_exhausted_before_any_event(generator_factory, simulator):
    # place_wait_seconds=0: refused at once, not after waiting for a place (test_place_wait.py)
    server = await generator_factory(
        comfyui_urls=simulator.url, max_queue_per_backend=1, place_wait_seconds=0
    )
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    simulator.faults.hang_nodes = ["ImageInvert"]
    try:
        blocker = stub.Generate(template_request("inverted_image", width=8, height=8), timeout=30)
        await events_until(blocker, lambda e: e.HasField("accepted"))
        started = time.monotonic()
        result = await run(stub, template_request("solid_image", width=8, height=8))
        assert result.error is not None
        assert result.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert not result.events
        assert time.monotonic() - started < 0.5
        blocker.cancel()
    finally:
        await channel.close()


async def test_backend_dying_mid_job_gives_unavailable_within_seconds(generator_stub, simulator):
    simulator.faults.hang_nodes = ["ImageInvert"]
    call = generator_stub.Generate(template_request("inverted_image", width=8, height=8), timeout=60)
    await events_until(call, running_node("ImageInvert"))
    started = time.monotonic()
    await simulator.stop()
    with pytest.raises(grpc.RpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - started < 4.0


async def test_late_history_write_is_waited_for_not_reported_empty(generator_stub, simulator):
    """execution_success can precede the history write (§5.3): completion waits for the entry."""
    simulator.faults.history_delay_s = 0.3
    result = await run(generator_stub, template_request("solid_image", width=8, height=8))
    assert result.error is None, result.error
    assert result.completed is not None
    assert result.completed.media_count == 1
