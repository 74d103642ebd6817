"""CancelRun of a queued and of a running run; a full generator sends a run back to wait."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from minio import Minio

from comfyui_sim import SimulatorHandle
from gateway.runs.jetstream import PRIORITIES
from gateway.runs.queue import RunQueue
from mediagen.scaffold import RunningServer
from mediagen.stack.nats import NatsEndpoint
from mediagen.v1 import gateway_pb2, storage_pb2
from tests.gateway.conftest import Gateway, stop_gateway
from tests.gateway.durable.conftest import start_run_gateway
from tests.gateway.durable.support import eventually, kinds, submit_request, wait_state, watch
from tests.gateway.runs import output
from tests.gateway.test_faults import nothing_left_behind, sim_idle
from tests.storage.conftest import StorageServer

CANCELLED = gateway_pb2.RUN_STATE_CANCELLED


async def test_a_cancelled_queued_run_never_starts(
    generator: RunningServer,
    storage: StorageServer,
    nats_server: NatsEndpoint,
    nats_prefix: str,
    sim: SimulatorHandle,
) -> None:
    api = await start_run_gateway(generator, storage, nats_server, nats_prefix, role="api")
    try:
        status = await api.stub.SubmitRun(submit_request(output("solid_image", width=8, height=8)))
        cancelled = await api.stub.CancelRun(gateway_pb2.CancelRunRequest(run_id=status.run_id))
        assert cancelled.state == CANCELLED
        assert cancelled.cancel_requested
        events = await watch(api.stub, status.run_id)
        assert kinds(events) == ["state_changed", "run_completed"]
        assert events[-1].run_completed.state == CANCELLED
        assert [o.state for o in events[-1].run_completed.outputs] == [gateway_pb2.OUTPUT_STATE_CANCELLED]
        prompts = sim.state()["prompts_run"]
        worker = await start_run_gateway(generator, storage, nats_server, nats_prefix, role="worker")
        try:
            # The worker drains the queue; a cancelled run is dropped, not run.
            marker = await api.stub.SubmitRun(submit_request(output("solid_image", width=8, height=8)))
            await wait_state(api.stub, marker.run_id, gateway_pb2.RUN_STATE_SUCCEEDED)
        finally:
            await stop_gateway(worker)
        assert sim.state()["prompts_run"] == prompts + 1  # type: ignore[operator]
        again = await api.stub.CancelRun(gateway_pb2.CancelRunRequest(run_id=status.run_id))
        assert again.state == CANCELLED
    finally:
        await stop_gateway(api)


async def test_a_cancelled_running_run_frees_comfyui_and_stores_nothing(
    runs_gateway: Gateway, sim: SimulatorHandle, minio_client: Minio, bucket: str
) -> None:
    stub = runs_gateway.stub
    sim.faults.hang_nodes = ["EmptyImage"]
    interrupts = int(sim.state()["interrupts"])  # type: ignore[call-overload]
    status = await stub.SubmitRun(submit_request(output("solid_image", color=0x778899), run_id="stop-me"))
    await wait_state(stub, "stop-me", gateway_pb2.RUN_STATE_RUNNING)
    await eventually(lambda: bool(sim.state()["running"]))
    cancelling = await stub.CancelRun(gateway_pb2.CancelRunRequest(run_id=status.run_id))
    assert cancelling.cancel_requested
    await eventually(lambda: sim_idle(sim))
    assert int(sim.state()["interrupts"]) > interrupts  # type: ignore[call-overload]
    reply = await wait_state(stub, "stop-me", CANCELLED)
    assert list(reply.media) == []
    assert nothing_left_behind(minio_client, bucket, "stop-me")
    events = await watch(stub, "stop-me")
    assert events[-1].run_completed.state == CANCELLED


async def test_a_generator_without_room_sends_the_run_back_to_wait(
    generator: RunningServer,
    storage: StorageServer,
    nats_server: NatsEndpoint,
    nats_prefix: str,
    sim: SimulatorHandle,
) -> None:
    """The generator takes 2 jobs per backend; the third output is refused and waits, then runs."""
    sim.faults.node_delay_s = {"EmptyImage": 2.0}
    gateway = await start_run_gateway(generator, storage, nats_server, nats_prefix, run_start_wait=0)
    try:
        outputs = [output("solid_image", width=8, height=8, color=0x10 + index) for index in range(3)]
        status = await gateway.stub.SubmitRun(submit_request(*outputs, concurrency=3))
        events = await watch(gateway.stub, status.run_id)
    finally:
        await stop_gateway(gateway)
    changes = [e.state_changed for e in events if e.WhichOneof("event") == "state_changed"]
    requeued = [change for change in changes if change.state == gateway_pb2.RUN_STATE_QUEUED]
    assert len(requeued) >= 2  # the submission, then at least one wait for room
    assert requeued[1].reason.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert "output_failed" not in kinds(events)
    completed = events[-1].run_completed
    assert (completed.state, completed.media_stored) == (gateway_pb2.RUN_STATE_SUCCEEDED, 3)
    reply = await gateway_reply(storage, status.run_id)
    assert len(reply.media) == 3


async def gateway_reply(storage: StorageServer, run_id: str) -> storage_pb2.GetRunResponse:
    return await storage.stub.GetRun(storage_pb2.GetRunRequest(run_id=run_id))


async def test_an_idle_worker_looks_less_and_less_often_yet_takes_a_submit_at_once(
    generator: RunningServer,
    storage: StorageServer,
    nats_server: NatsEndpoint,
    nats_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading the queues when nothing comes doubles its wait up to IDLE_MAX_SECONDS; a submit's
    publish still wakes the worker at once."""
    looks: list[float] = []
    read_streams = RunQueue.waiting_callers

    async def counted(self: RunQueue, priority: int) -> list[str]:
        if priority == PRIORITIES[0]:
            looks.append(time.monotonic())
        return await read_streams(self, priority)

    monkeypatch.setattr(RunQueue, "waiting_callers", counted)
    gateway = await start_run_gateway(generator, storage, nats_server, nats_prefix)
    try:
        await asyncio.sleep(4.0)
        idle_looks = len(looks)
        # 0.25 s doubling to 2 s: about 5 looks in 4 s (16 at a steady 0.25 s).
        assert 2 <= idle_looks <= 8, looks
        status = await gateway.stub.SubmitRun(submit_request(output("solid_image", width=8, height=8)))
        events = await asyncio.wait_for(watch(gateway.stub, status.run_id), 30)
        assert events[-1].run_completed.state == gateway_pb2.RUN_STATE_SUCCEEDED
    finally:
        await stop_gateway(gateway)
