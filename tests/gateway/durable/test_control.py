"""Idempotent submits, unknown runs, listing, the queue's cap, priorities and queue positions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from comfyui_sim import SimulatorHandle
from mediagen.scaffold import RunningServer
from mediagen.scaffold.errors import status_details, status_of_rpc_error
from mediagen.stack.nats import NatsEndpoint
from mediagen.v1 import gateway_pb2, storage_pb2
from tests.gateway.conftest import Gateway, stop_gateway
from tests.gateway.durable.conftest import start_run_gateway
from tests.gateway.durable.support import submit_request, wait_state, watch
from tests.gateway.runs import output
from tests.storage.conftest import StorageServer

HIGH, NORMAL, LOW = (
    gateway_pb2.RUN_PRIORITY_HIGH,
    gateway_pb2.RUN_PRIORITY_NORMAL,
    gateway_pb2.RUN_PRIORITY_LOW,
)


@pytest.fixture
async def api_gateway(
    generator: RunningServer, storage: StorageServer, nats_server: NatsEndpoint, nats_prefix: str
) -> AsyncIterator[Gateway]:
    """A gateway that answers calls but executes nothing: submitted runs stay queued."""
    gateway = await start_run_gateway(generator, storage, nats_server, nats_prefix, role="api", queue_cap=3)
    yield gateway
    await stop_gateway(gateway)


def tiny(color: int = 0x102030) -> gateway_pb2.OutputSpec:
    return output("solid_image", width=8, height=8, color=color)


async def test_same_request_under_the_same_id_is_the_same_run(api_gateway: Gateway) -> None:
    stub = api_gateway.stub
    first = await stub.SubmitRun(submit_request(tiny(), run_id="same-run"))
    again = await stub.SubmitRun(submit_request(tiny(), run_id="same-run"))
    assert (again.run_id, again.created_at) == (first.run_id, first.created_at)
    listed = await stub.ListRuns(gateway_pb2.ListRunsRequest())
    assert [run.run_id for run in listed.runs] == ["same-run"]
    with pytest.raises(grpc.RpcError) as refused:
        await stub.SubmitRun(submit_request(tiny(color=0x405060), run_id="same-run"))
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert status_details(status_of_rpc_error(refused.value)).reason == "RUN_ID_TAKEN"


async def test_unknown_runs_are_not_found_naming_the_retention(api_gateway: Gateway) -> None:
    stub = api_gateway.stub
    for call in (
        stub.GetRun(storage_pb2.GetRunRequest(run_id="never-submitted")),
        stub.CancelRun(gateway_pb2.CancelRunRequest(run_id="never-submitted")),
        watch(stub, "never-submitted"),
    ):
        with pytest.raises(grpc.RpcError) as missing:
            await call
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert "7d" in (missing.value.details() or "")
    assert status_details(status_of_rpc_error(missing.value)).metadata["retention"] == "7d"


async def test_bad_submits_are_refused_before_anything_is_queued(api_gateway: Gateway) -> None:
    stub = api_gateway.stub
    with pytest.raises(grpc.RpcError) as bad:
        await stub.SubmitRun(submit_request(output("no_such_template")))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as bad_priority:
        await stub.SubmitRun(submit_request(tiny(), priority=9))
    assert bad_priority.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list((await stub.ListRuns(gateway_pb2.ListRunsRequest())).runs) == []


async def test_a_full_queue_refuses_with_the_cap_in_the_details(api_gateway: Gateway) -> None:
    stub = api_gateway.stub
    for index in range(3):
        await stub.SubmitRun(submit_request(tiny(), run_id=f"fill-{index}"))
    with pytest.raises(grpc.RpcError) as full:
        await stub.SubmitRun(submit_request(tiny(), run_id="one-too-many"))
    assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = status_details(status_of_rpc_error(full.value))
    assert details.metadata["queue_cap"] == "3"
    # Another priority has a queue of its own.
    await stub.SubmitRun(submit_request(tiny(), run_id="urgent", priority=HIGH))


async def test_list_filters_and_pages_newest_first(api_gateway: Gateway) -> None:
    stub = api_gateway.stub
    submitted = []
    for index, team in enumerate(["red", "blue", "red"]):
        status = await stub.SubmitRun(
            submit_request(tiny(), run_id=f"listed-{index}", priority=LOW, labels={"team": team})
        )
        submitted.append(status)
    await stub.CancelRun(gateway_pb2.CancelRunRequest(run_id="listed-1"))
    everything = await stub.ListRuns(gateway_pb2.ListRunsRequest())
    assert [run.run_id for run in everything.runs] == ["listed-2", "listed-1", "listed-0"]
    red = await stub.ListRuns(gateway_pb2.ListRunsRequest(labels={"team": "red"}))
    assert [run.run_id for run in red.runs] == ["listed-2", "listed-0"]
    queued = await stub.ListRuns(gateway_pb2.ListRunsRequest(states=[gateway_pb2.RUN_STATE_QUEUED]))
    assert [run.run_id for run in queued.runs] == ["listed-2", "listed-0"]
    since = await stub.ListRuns(gateway_pb2.ListRunsRequest(created_after=submitted[1].created_at))
    assert [run.run_id for run in since.runs] == ["listed-2", "listed-1"]
    pages, token = [], ""
    while True:
        page = await stub.ListRuns(gateway_pb2.ListRunsRequest(page_size=2, page_token=token))
        pages.append([run.run_id for run in page.runs])
        token = page.next_page_token
        if not token:
            break
    assert pages == [["listed-2", "listed-1"], ["listed-0"]]
    with pytest.raises(grpc.RpcError) as bad_token:
        await stub.ListRuns(gateway_pb2.ListRunsRequest(page_token="not-a-token"))
    assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_higher_priority_first_and_first_in_first_out_within_one(
    api_gateway: Gateway,
    generator: RunningServer,
    storage: StorageServer,
    nats_server: NatsEndpoint,
    nats_prefix: str,
    sim: SimulatorHandle,
) -> None:
    stub = api_gateway.stub
    order = [("low-a", LOW), ("normal-a", NORMAL), ("low-b", LOW), ("high-a", HIGH), ("normal-b", NORMAL)]
    positions = {}
    for run_id, priority in order:
        positions[run_id] = (
            await stub.SubmitRun(submit_request(tiny(), run_id=run_id, priority=priority))
        ).queue_position
    assert positions == {"low-a": 0, "normal-a": 0, "low-b": 2, "high-a": 0, "normal-b": 2}
    waiting = await stub.GetRun(storage_pb2.GetRunRequest(run_id="low-b"))
    assert waiting.status.queue_position == 4
    worker = await start_run_gateway(
        generator, storage, nats_server, nats_prefix, role="worker", worker_runs=1
    )
    try:
        started = {}
        for run_id, _ in order:
            reply = await wait_state(stub, run_id, gateway_pb2.RUN_STATE_SUCCEEDED)
            started[run_id] = reply.status.started_at.ToNanoseconds()
    finally:
        await stop_gateway(worker)
    assert sorted(started, key=started.__getitem__) == ["high-a", "normal-a", "normal-b", "low-a", "low-b"]


async def test_a_waiting_run_s_watchers_are_told_its_queue_position(api_gateway: Gateway) -> None:
    stub = api_gateway.stub
    await stub.SubmitRun(submit_request(tiny(), run_id="ahead"))
    await stub.SubmitRun(submit_request(tiny(), run_id="behind"))
    call = stub.WatchRun(gateway_pb2.WatchRunRequest(run_id="behind"))
    seen = []
    async for event in call:
        seen.append(event)
        if event.WhichOneof("event") == "queue_position":
            break
    call.cancel()
    assert seen[0].state_changed.state == gateway_pb2.RUN_STATE_QUEUED
    assert seen[-1].queue_position.queue_position == 1
    assert seen[-1].sequence == seen[0].sequence  # not logged: it repeats the last sequence


async def test_runs_older_than_the_retention_are_not_found_naming_it(
    generator: RunningServer, storage: StorageServer, nats_server: NatsEndpoint, nats_prefix: str
) -> None:
    gateway = await start_run_gateway(
        generator, storage, nats_server, nats_prefix, role="api", run_retention=2
    )
    try:
        await gateway.stub.SubmitRun(submit_request(tiny(), run_id="short-lived"))
        await gateway.stub.CancelRun(gateway_pb2.CancelRunRequest(run_id="short-lived"))
        request = gateway_pb2.ListRunsRequest()
        deadline = time.monotonic() + 60
        while (await gateway.stub.ListRuns(request)).runs:
            assert time.monotonic() < deadline, "the run did not expire"
            await asyncio.sleep(0.5)
        # The server drops expired entries on its own schedule: a lookup by key may still find
        # the record a moment after the listing stopped showing it.
        gone: grpc.RpcError | None = None
        while gone is None:
            try:
                await watch(gateway.stub, "short-lived")
            except grpc.RpcError as err:
                gone = err
                continue
            assert time.monotonic() < deadline, "the run could still be watched"
            await asyncio.sleep(0.5)
        assert gone.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
        assert "kept 2s" in (gone.details() or "")  # type: ignore[attr-defined]
    finally:
        await stop_gateway(gateway)


async def test_a_run_id_is_never_a_wildcard(api_gateway: Gateway) -> None:
    stub = api_gateway.stub
    for run_id in ("*", ">", "a.b", "../x"):
        for call in (
            stub.GetRun(storage_pb2.GetRunRequest(run_id=run_id)),
            stub.CancelRun(gateway_pb2.CancelRunRequest(run_id=run_id)),
            watch(stub, run_id),
        ):
            with pytest.raises(grpc.RpcError) as bad:
                await call
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
