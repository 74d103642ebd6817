"""Callers take turns within a priority: one caller's flood does not hold up another's runs.

Runs are queued per caller (a subject and a consumer each) and workers ask the callers
with runs waiting in turn, highest priority first. Checked by the order in which one
worker, executing one run at a time, starts the runs: the start times are the ones the
records hold, so the check is of order, never of speed.
"""

from __future__ import annotations

from pathlib import Path

import nats

from gateway.run_ids import RunIds
from gateway.runs.jetstream import Layout
from mediagen.scaffold import RunningServer
from mediagen.scaffold.callers import Caller
from mediagen.stack.nats import NatsEndpoint
from mediagen.v1 import gateway_pb2, storage_pb2
from tests.gateway.conftest import stop_gateway
from tests.gateway.durable.conftest import start_run_gateway
from tests.gateway.durable.support import submit_request, wait_state
from tests.gateway.durable.test_ownership import limited_callers
from tests.gateway.runs import output
from tests.storage.conftest import StorageServer

FLOOD = 50
HIGH, NORMAL = gateway_pb2.RUN_PRIORITY_HIGH, gateway_pb2.RUN_PRIORITY_NORMAL


def tiny() -> gateway_pb2.OutputSpec:
    return output("solid_image", width=8, height=8)


async def test_a_flood_by_one_caller_takes_turns_with_another_caller_s_runs(
    tmp_path: Path,
    generator: RunningServer,
    storage: StorageServer,
    nats_server: NatsEndpoint,
    nats_prefix: str,
) -> None:
    async with limited_callers(tmp_path, generator, storage, nats_server, nats_prefix, role="api") as callers:
        alice, bob, ops = (callers.stubs[name] for name in ("alice", "bob", "ops"))
        for index in range(FLOOD):
            await alice.SubmitRun(submit_request(tiny(), run_id=f"flood-{index:02d}"))
        positions = []
        for index in range(3):
            status = await bob.SubmitRun(submit_request(tiny(), run_id=f"few-{index}"))
            positions.append(status.queue_position)
        # Bob's k-th run waits for his k earlier ones and for k of alice's, not for all 50.
        assert positions == [0, 2, 4]
        urgent = await alice.SubmitRun(submit_request(tiny(), run_id="urgent", priority=HIGH))
        assert urgent.queue_position == 0

        worker = await start_run_gateway(
            generator, storage, nats_server, nats_prefix, role="worker", worker_runs=1
        )
        try:
            for index in range(3):
                await wait_state(bob, f"few-{index}", gateway_pb2.RUN_STATE_SUCCEEDED, within=60.0)
        finally:
            await stop_gateway(worker)
        listed = await ops.ListRuns(gateway_pb2.ListRunsRequest(page_size=500))

    # An admin sees the others' runs under their stored ids: shown here as their owners named them.
    started = sorted(
        (run.started_at.ToNanoseconds(), RunIds(Caller(run.caller)).shown(run.run_id))
        for run in listed.runs
        if run.HasField("started_at")
    )
    order = [run_id for _, run_id in started]
    # The higher priority first, then bob's runs and alice's flood by turns.
    assert order[0] == "urgent"
    last_of_bob = max(order.index(f"few-{index}") for index in range(3))
    assert last_of_bob <= 1 + 2 * 3
    floods_before = [run_id for run_id in order[:last_of_bob] if run_id.startswith("flood-")]
    assert floods_before == sorted(floods_before)  # each caller's runs first in, first out
    assert len(floods_before) <= 3
    still_queued = [run for run in listed.runs if run.state == gateway_pb2.RUN_STATE_QUEUED]
    assert len(still_queued) >= FLOOD - 10  # the flood was far from drained


async def test_runs_queued_on_the_shared_subject_by_an_older_gateway_still_run(
    generator: RunningServer,
    storage: StorageServer,
    nats_server: NatsEndpoint,
    nats_prefix: str,
) -> None:
    """Before runs were queued per caller every run of a priority went on one subject: a run left
    there during an upgrade is taken like any other."""
    gateway = await start_run_gateway(generator, storage, nats_server, nats_prefix, role="api")
    try:
        request = submit_request(tiny(), run_id="from-before")
        request.caller = "anonymous"
        request.priority = NORMAL
        client = await nats.connect(nats_server.url)
        try:
            await client.jetstream().publish(
                f"{nats_prefix.lower()}.queue.normal",
                request.SerializeToString(deterministic=True),
                stream=f"{nats_prefix}_QUEUE_NORMAL",
                headers={"Nats-Msg-Id": request.run_id},
            )
        finally:
            await client.close()
        worker = await start_run_gateway(generator, storage, nats_server, nats_prefix, role="worker")
        try:
            done = await wait_state(gateway.stub, "from-before", gateway_pb2.RUN_STATE_SUCCEEDED, within=60.0)
        finally:
            await stop_gateway(worker)
        assert done.status.caller == "anonymous"
        stored = await gateway.stub.GetRun(storage_pb2.GetRunRequest(run_id="from-before"))
        assert len(stored.media) == 1
    finally:
        await stop_gateway(gateway)


async def test_a_callers_queue_consumer_expires_when_unused_and_is_made_again_when_gone(
    tmp_path: Path,
    generator: RunningServer,
    storage: StorageServer,
    nats_server: NatsEndpoint,
    nats_prefix: str,
) -> None:
    """One consumer per caller and priority, kept for ever, would pile up with every caller a
    platform ever had: NATS removes one unused for ``caller_queue_idle_seconds``, and a worker
    that finds it gone makes it again."""
    async with limited_callers(tmp_path, generator, storage, nats_server, nats_prefix) as callers:
        alice = callers.stubs["alice"]
        await alice.SubmitRun(submit_request(tiny(), run_id="first"))
        await wait_state(alice, "first", gateway_pb2.RUN_STATE_SUCCEEDED, within=60.0)
        client = await nats.connect(nats_server.url)
        try:
            js = client.jetstream()
            layout = Layout(nats_prefix)
            stream = layout.queue_stream(NORMAL)
            shared = layout.queue_consumer(NORMAL)
            [own] = [info for info in await js.consumers_info(stream) if info.name != shared]
            assert own.config.inactive_threshold == 86_400.0
            [kept] = [info for info in await js.consumers_info(stream) if info.name == shared]
            assert not kept.config.inactive_threshold  # the shared subject's consumer stays
            await js.delete_consumer(stream, own.name)  # as NATS does once it is unused long enough
            await alice.SubmitRun(submit_request(tiny(), run_id="second"))
            await wait_state(alice, "second", gateway_pb2.RUN_STATE_SUCCEEDED, within=60.0)
            assert [info.name for info in await js.consumers_info(stream) if info.name != shared] == [
                own.name
            ]
        finally:
            await client.close()
