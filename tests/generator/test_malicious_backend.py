"""A ComfyUI that lies: history naming files outside its output folder or files it never made,
``/view`` answers whose Content-Length is wrong or whose body never ends, events sent for other
prompts. Each ends the job with a specific status and a bounded message, nothing outside the
output folder is requested, no prompt runs twice, and nothing reaches storage.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from minio import Minio

from comfyui_sim.server import SimulatorHandle
from mediagen.scaffold import RunningServer
from mediagen.scaffold.errors import status_details, status_of_rpc_error
from mediagen.stack.minio import MinioEndpoint
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc, generator_pb2, generator_pb2_grpc
from tests.gateway.conftest import start_gateway, stop_gateway
from tests.generator.support import run, sha256, template_request
from tests.storage.conftest import start_storage, stop_storage, storage_settings

MAX_MESSAGE = 2048
MiB = 1024 * 1024

OUTSIDE = [
    pytest.param({"filename": "../../../etc/passwd"}, id="dot-dot-name"),
    pytest.param({"filename": "/etc/passwd"}, id="absolute-name"),
    pytest.param({"filename": "passwd", "subfolder": "../../../etc"}, id="dot-dot-subfolder"),
    pytest.param({"filename": "passwd", "subfolder": "/etc"}, id="absolute-subfolder"),
    pytest.param({"filename": "..\\..\\secret.txt"}, id="backslash-dot-dot"),
    pytest.param({"filename": "secret.txt", "type": "input"}, id="input-folder"),
    pytest.param({"filename": "x\x00.png"}, id="nul"),
]


def solid(color: int = 0) -> generator_pb2.GenerateRequest:
    return template_request("solid_image", width=8, height=8, color=color)


def requested(sim: SimulatorHandle) -> list[str]:
    asked: list[str] = sim.state()["view_requests"]  # type: ignore[assignment]
    return asked


async def download_stops(sim: SimulatorHandle, within: float = 10.0) -> None:
    """The simulator stops serving bytes soon after the client hung up (socket buffers drain)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    served = sim.state()["bytes_served"]
    while loop.time() < end:
        await asyncio.sleep(1.0)
        now = sim.state()["bytes_served"]
        if now == served:
            return
        served = now
    raise AssertionError(f"/view still sending {within:g}s after the client hung up")


def assert_ran_once_each(sim: SimulatorHandle, prompts: int) -> None:
    state = sim.state()
    assert state["prompts_run"] == prompts
    assert state["prompts_run_twice"] == []


@pytest.mark.parametrize("entry", OUTSIDE)
async def test_a_history_naming_a_file_outside_the_output_folder_fails_before_any_download(
    generator_stub: generator_pb2_grpc.GeneratorServiceAsyncStub,
    simulator: SimulatorHandle,
    entry: dict[str, str],
) -> None:
    secret = simulator.data_dir / "input" / "secret.txt"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("not for callers")
    simulator.faults.history_injected_files = [{"subfolder": "", "type": "output", **entry}]
    result = await run(generator_stub, solid())
    assert result.error is not None
    assert (result.error.code, result.error.reason) == (grpc.StatusCode.DATA_LOSS, "UNSAFE_OUTPUT_NAME")
    assert len(result.error.message.encode()) <= MAX_MESSAGE
    assert result.media == [], "no output of a job with an unsafe listing is sent"
    assert requested(simulator) == [], "nothing at all was fetched from /view"
    assert_ran_once_each(simulator, 1)


async def test_a_history_naming_a_file_that_does_not_exist_is_data_loss(
    generator_stub: generator_pb2_grpc.GeneratorServiceAsyncStub, simulator: SimulatorHandle
) -> None:
    simulator.faults.history_injected_files = [
        {"filename": "never-made.png", "subfolder": "", "type": "output"}
    ]
    result = await run(generator_stub, solid())
    assert result.error is not None
    assert (result.error.code, result.error.reason) == (grpc.StatusCode.DATA_LOSS, "OUTPUT_MISSING")
    assert result.error.metadata["filename"] == "never-made.png"
    assert result.media == [] or all(m.end is None for m in result.media)
    assert requested(simulator) == ["output:/never-made.png"]
    assert_ran_once_each(simulator, 1)


async def test_a_megabyte_file_name_is_quoted_only_in_part(
    generator_stub: generator_pb2_grpc.GeneratorServiceAsyncStub, simulator: SimulatorHandle
) -> None:
    name = "a" * 1_000_000 + ".png"
    simulator.faults.history_injected_files = [{"filename": name, "subfolder": "", "type": "output"}]
    result = await run(generator_stub, solid())
    assert result.error is not None
    assert (result.error.code, result.error.reason) == (grpc.StatusCode.DATA_LOSS, "UNSAFE_OUTPUT_NAME")
    assert len(result.error.message.encode()) <= MAX_MESSAGE
    assert all(len(value) <= 200 for value in result.error.metadata.values())
    assert_ran_once_each(simulator, 1)


async def test_a_view_promising_more_bytes_than_it_sends_is_a_truncated_download(
    generator_stub: generator_pb2_grpc.GeneratorServiceAsyncStub, simulator: SimulatorHandle
) -> None:
    simulator.faults.view_length_offset = 1000
    result = await run(generator_stub, solid())
    assert result.error is not None
    assert (result.error.code, result.error.reason) == (grpc.StatusCode.DATA_LOSS, "TRUNCATED_DOWNLOAD")
    assert int(result.error.metadata["expected_bytes"]) - int(result.error.metadata["received_bytes"]) >= 1000
    assert all(m.end is None for m in result.media), "a short file never gets its media_end"
    assert_ran_once_each(simulator, 1)


async def test_an_endless_view_body_ends_with_the_job_deadline_and_the_download_stops(
    generator_stub: generator_pb2_grpc.GeneratorServiceAsyncStub, simulator: SimulatorHandle
) -> None:
    simulator.faults.view_endless = True
    simulator.faults.view_bytes_per_s = 4 * MiB
    received, ends = 0, 0

    async def read() -> None:
        nonlocal received, ends
        async for event in generator_stub.Generate(template_request("solid_image", timeout=2.0), timeout=30):
            received += len(event.media_chunk.data)
            ends += event.HasField("media_end")

    with pytest.raises(grpc.RpcError) as failure:
        await read()
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert len(status_of_rpc_error(failure.value).message.encode()) <= MAX_MESSAGE
    assert ends == 0, "an endless body never completes"
    assert 0 < received <= 3 * 4 * MiB
    await download_stops(simulator)
    assert_ran_once_each(simulator, 1)


async def test_events_for_other_prompts_are_ignored(
    generator_stub: generator_pb2_grpc.GeneratorServiceAsyncStub, simulator: SimulatorHandle
) -> None:
    """Two jobs at once: each one's events are also sent for the other, and both still succeed."""
    simulator.faults.ws_foreign_events = True
    simulator.faults.node_delay_s["EmptyImage"] = 0.2
    first, second = await asyncio.gather(
        run(generator_stub, solid(0x0000FF)), run(generator_stub, solid(0xFF0000))
    )
    for result in (first, second):
        assert result.error is None, result.error
        assert result.completed is not None
        assert len(result.media) == 1
        media = result.media[0]
        assert media.end is not None
        assert media.end.sha256 == sha256(media.data)
    assert first.media[0].data != second.media[0].data, "each job got its own image"
    assert simulator.state()["ws_events_sent"] != 0
    assert_ran_once_each(simulator, 2)


async def test_events_for_made_up_prompts_are_ignored(
    generator_stub: generator_pb2_grpc.GeneratorServiceAsyncStub, simulator: SimulatorHandle
) -> None:
    simulator.faults.ws_foreign_events = True
    result = await run(generator_stub, solid())
    assert result.error is None
    assert result.completed is not None
    assert len(result.media) == 1
    assert_ran_once_each(simulator, 1)


# ------------------------------------------------------------------ through the gateway


@dataclass
class Stack:
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub
    minio: Minio
    bucket: str


@pytest.fixture
async def stack(
    generator_server: RunningServer, minio_endpoint: MinioEndpoint, bucket: str, minio_client: Minio
) -> AsyncIterator[Stack]:
    storage = await start_storage(
        storage_settings(minio_endpoint, bucket, max_media_bytes=1 * MiB), minio_client
    )
    gateway = await start_gateway(generator_target=generator_server.address, storage_target=storage.address)
    yield Stack(gateway.stub, minio_client, bucket)
    await stop_gateway(gateway)
    await stop_storage(storage)


async def generate(stack: Stack) -> tuple[str, list[gateway_pb2.GatewayEvent]]:
    workflow = generator_pb2.WorkflowSpec(template="solid_image")
    workflow.parameters["width"].int_value = 8
    workflow.parameters["height"].int_value = 8
    request = gateway_pb2.GatewayGenerateRequest(outputs=[gateway_pb2.OutputSpec(workflow=workflow)])
    events = [event async for event in stack.stub.Generate(request, timeout=60)]
    return events[0].run_created.run.run_id, events


def only_the_run_record(stack: Stack, run_id: str) -> None:
    keys = [o.object_name for o in stack.minio.list_objects(stack.bucket, prefix="runs/", recursive=True)]
    assert keys == [f"runs/{run_id}/run.json"]
    assert list(stack.minio._list_multipart_uploads(stack.bucket, prefix="runs/").uploads) == []


def failed_output(events: list[gateway_pb2.GatewayEvent]) -> grpc.StatusCode:
    failures = [e.output_failed for e in events if e.HasField("output_failed")]
    assert len(failures) == 1
    details = status_details(failures[0].status)
    assert len(details.message.encode()) <= MAX_MESSAGE
    assert events[-1].run_completed.outputs_failed == 1
    assert events[-1].run_completed.media_stored == 0
    return details.code


async def test_an_unsafe_history_through_the_gateway_stores_nothing(
    stack: Stack, simulator: SimulatorHandle
) -> None:
    simulator.faults.history_injected_files = [
        {"filename": "../../etc/passwd", "subfolder": "", "type": "output"}
    ]
    run_id, events = await generate(stack)
    assert failed_output(events) == grpc.StatusCode.DATA_LOSS
    only_the_run_record(stack, run_id)
    assert requested(simulator) == []


async def test_a_short_view_body_through_the_gateway_stores_nothing(
    stack: Stack, simulator: SimulatorHandle
) -> None:
    simulator.faults.view_length_offset = 5000
    run_id, events = await generate(stack)
    assert failed_output(events) == grpc.StatusCode.DATA_LOSS
    only_the_run_record(stack, run_id)


async def test_an_endless_view_body_through_the_gateway_stores_nothing(
    stack: Stack, simulator: SimulatorHandle
) -> None:
    simulator.faults.view_endless = True
    run_id, events = await generate(stack)
    assert failed_output(events) not in (
        grpc.StatusCode.OK,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    )
    only_the_run_record(stack, run_id)
    await download_stops(simulator)
    assert_ran_once_each(simulator, 1)
