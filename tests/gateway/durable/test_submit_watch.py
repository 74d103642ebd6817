"""SubmitRun queues, a worker runs, WatchRun replays and follows the run's log."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from minio import Minio

from mediagen.v1 import gateway_pb2, storage_pb2
from tests.gateway.conftest import Gateway
from tests.gateway.durable.support import kinds, submit_request, watch
from tests.gateway.runs import output, request, run

SUCCEEDED = gateway_pb2.RUN_STATE_SUCCEEDED


async def test_submit_answers_queued_then_the_run_completes_and_is_stored(
    runs_gateway: Gateway, minio_client: Minio, bucket: str
) -> None:
    stub = runs_gateway.stub
    status = await stub.SubmitRun(
        submit_request(output("solid_image", width=8, height=8), output("solid_image", width=16, height=16))
    )
    assert status.state == gateway_pb2.RUN_STATE_QUEUED
    assert status.run_id
    assert status.output_count == 2
    events = await watch(stub, status.run_id)
    assert kinds(events)[0] == "state_changed"
    assert events[0].state_changed.state == gateway_pb2.RUN_STATE_QUEUED
    assert kinds(events)[-1] == "run_completed"
    completed = events[-1].run_completed
    assert (completed.state, completed.media_stored, completed.outputs_failed) == (SUCCEEDED, 2, 0)
    sequences = [event.sequence for event in events]
    assert sequences == sorted(set(sequences))
    reply = await stub.GetRun(storage_pb2.GetRunRequest(run_id=status.run_id))
    assert reply.status.state == SUCCEEDED
    assert len(reply.media) == 2
    assert reply.status.HasField("started_at")
    assert reply.status.HasField("finished_at")
    assert [o.state for o in reply.status.outputs] == [gateway_pb2.OUTPUT_STATE_SUCCEEDED] * 2
    assert reply.status.last_sequence == events[-1].sequence
    stored = [
        o for o in minio_client.list_objects(bucket, recursive=True) if "/media/" in (o.object_name or "")
    ]
    assert len(stored) == 2


async def test_replay_resume_after_sequence_and_several_watchers(runs_gateway: Gateway) -> None:
    stub = runs_gateway.stub
    status = await stub.SubmitRun(
        submit_request(*(output("solid_image", width=8, height=8) for _ in range(3)))
    )
    first, second = await asyncio.gather(watch(stub, status.run_id), watch(stub, status.run_id))
    assert [e.SerializeToString() for e in first] == [e.SerializeToString() for e in second]
    replayed = await watch(stub, status.run_id)
    assert [e.sequence for e in replayed] == [e.sequence for e in first]
    for cut in range(len(first)):
        rest = await watch(stub, status.run_id, after=first[cut].sequence)
        assert [e.sequence for e in rest] == [e.sequence for e in first[cut + 1 :]]
        if cut >= 2:
            break


async def test_an_id_storage_already_has_is_refused(runs_gateway: Gateway) -> None:
    """A run made with Generate keeps its id: SubmitRun does not write into it."""
    stub = runs_gateway.stub
    direct = await run(stub, request(output("solid_image", width=8, height=8), run_id="made-directly"))
    assert direct.completed.media_stored == 1
    with pytest.raises(grpc.RpcError) as taken:
        await stub.SubmitRun(submit_request(output("solid_image", width=8, height=8), run_id="made-directly"))
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
    reply = await stub.GetRun(storage_pb2.GetRunRequest(run_id="made-directly"))
    assert not reply.HasField("status")
    assert len(reply.media) == 1
