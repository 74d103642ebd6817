"""Failures end one output, or the call, cleanly: a clear status, ComfyUI freed, nothing partial."""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from minio import Minio

from comfyui_sim import SimulatorHandle
from mediagen.ports import free_port
from mediagen.scaffold.errors import status_details
from mediagen.v1 import gateway_pb2, storage_pb2
from tests.gateway.conftest import Gateway, start_gateway, stop_gateway
from tests.gateway.runs import output, request, run

MiB = 1024 * 1024
State = gateway_pb2.OutputState


async def eventually(check, within: float = 8.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


def nothing_left_behind(minio: Minio, bucket: str, run_id: str) -> bool:
    media = [o for o in minio.list_objects(bucket, recursive=True) if "/media/" in o.object_name]
    uploads = minio._list_multipart_uploads(bucket).uploads
    return (
        not media
        and not uploads
        and all(run_id in o.object_name for o in minio.list_objects(bucket, recursive=True))
    )


def sim_idle(sim: SimulatorHandle) -> bool:
    state = sim.state()
    return not state["running"] and not state["pending"]


async def test_a_failing_node_fails_its_output_and_the_others_are_stored(
    gateway: Gateway, sim: SimulatorHandle
) -> None:
    sim.faults.fail_nodes = {"EmptyAudio": "injected failure"}
    result = await run(
        gateway.stub,
        request(
            output("solid_image", width=8, height=8), output("empty_audio"), output("animated_webp", frames=2)
        ),
    )
    failed = [e.output_failed for e in result.of("output_failed")]
    assert [f.output_index for f in failed] == [1]
    details = status_details(failed[0].status)
    assert details.code == grpc.StatusCode.ABORTED
    assert "injected failure" in details.message
    completed = result.completed
    assert [o.state for o in completed.outputs] == [
        State.OUTPUT_STATE_SUCCEEDED,
        State.OUTPUT_STATE_FAILED,
        State.OUTPUT_STATE_SUCCEEDED,
    ]
    assert (completed.media_stored, completed.outputs_failed) == (2, 1)
    assert completed.outputs[1].error.code == grpc.StatusCode.ABORTED.value[0]
    assert [r.output_index for r in result.records] == [0, 2]


async def test_output_timeout_fails_that_output_and_frees_comfyui(
    gateway: Gateway, sim: SimulatorHandle
) -> None:
    sim.faults.hang_nodes = ["EmptyAudio"]
    result = await run(gateway.stub, request(output("empty_audio", timeout=1.0), output("solid_image")))
    failed = result.of("output_failed")
    assert failed[0].output_failed.status.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert result.completed.media_stored == 1
    await eventually(lambda: sim_idle(sim))


async def test_caller_deadline_is_reported_in_time_and_frees_comfyui(
    gateway: Gateway, sim: SimulatorHandle, minio_client: Minio, bucket: str
) -> None:
    """The deadline reaches the generator, which stops just before it: the caller still hears why."""
    sim.faults.hang_nodes = ["EmptyImage"]  # a colour of its own: ComfyUI would answer a repeat from cache
    started = time.monotonic()
    try:
        result = await run(
            gateway.stub, request(output("solid_image", color=0x112233), run_id="deadline"), deadline=1.5
        )
        code = result.of("output_failed")[0].output_failed.status.code
        assert result.completed.outputs_failed == 1
    except grpc.aio.AioRpcError as err:
        code = err.code().value[0]
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert time.monotonic() - started < 3
    await eventually(lambda: sim_idle(sim))
    assert nothing_left_behind(minio_client, bucket, "deadline")


async def test_caller_cancel_interrupts_comfyui(
    gateway: Gateway, sim: SimulatorHandle, minio_client: Minio, bucket: str
) -> None:
    sim.faults.hang_nodes = ["EmptyImage"]
    interrupts = int(sim.state()["interrupts"])  # type: ignore[call-overload]
    call = gateway.stub.Generate(request(output("solid_image", color=0x445566), run_id="walked-away"))
    async for event in call:
        if event.WhichOneof("event") == "output_accepted":
            break
    await eventually(lambda: bool(sim.state()["running"]))
    call.cancel()
    await eventually(lambda: sim_idle(sim))
    assert sim.state()["interrupts"] > interrupts
    assert nothing_left_behind(minio_client, bucket, "walked-away")


async def test_cancel_mid_transfer_leaves_no_object_and_no_multipart_upload(
    gateway: Gateway, sim: SimulatorHandle, minio_client: Minio, bucket: str
) -> None:
    sim.faults.view_bytes_per_s = 8 * MiB
    call = gateway.stub.Generate(request(output("large_image", size_bytes=48 * MiB), run_id="cancelled"))
    async for event in call:
        if event.WhichOneof("event") == "output_progress" and event.output_progress.progress.stage == 3:
            break
    await eventually(lambda: bool(minio_client._list_multipart_uploads(bucket).uploads))
    call.cancel()
    await eventually(lambda: nothing_left_behind(minio_client, bucket, "cancelled"))
    listed = await gateway.stub.GetRun(storage_pb2.GetRunRequest(run_id="cancelled"))
    assert list(listed.media) == []


async def test_a_full_backend_is_retried_until_it_has_room(gateway: Gateway, sim: SimulatorHandle) -> None:
    """The generator allows 2 jobs per backend here, so outputs 3 and 4 are refused at first."""
    sim.faults.node_delay_s = {"EmptyImage": 0.3}
    outputs = [output("solid_image", width=8, height=8) for _ in range(4)]
    result = await run(gateway.stub, request(*outputs, concurrency=4))
    assert (result.completed.media_stored, result.completed.outputs_failed) == (4, 0)


async def test_gateway_is_not_serving_while_a_peer_is_down(generator: object) -> None:
    dead = f"127.0.0.1:{free_port()}"
    gateway = await start_gateway(generator_target=generator.address, storage_target=dead)  # type: ignore[attr-defined]
    try:
        channel = grpc.aio.insecure_channel(gateway.running.address)
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        await channel.close()
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert "storage" in gateway.running.health.failures
    finally:
        await stop_gateway(gateway)
