"""A run through the gateway stores every output, byte for byte, and says so as it goes."""

from __future__ import annotations

import hashlib

import grpc
import pytest
from minio import Minio

from comfyui_sim import SimulatorHandle
from mediagen.v1 import common_pb2, gateway_pb2, storage_pb2
from tests.gateway.conftest import Gateway, sim_output_file
from tests.gateway.runs import output, request, run
from tests.support.minio_source import read_object

State = gateway_pb2.OutputState


async def test_multi_output_run_stores_each_output_as_generated(
    gateway: Gateway, sim: SimulatorHandle, minio_client: Minio, bucket: str
) -> None:
    result = await run(
        gateway.stub,
        request(
            output("solid_image", width=32, height=16),
            output("animated_webp", frames=3),
            output("empty_audio"),
            labels={"case": "multi"},
        ),
    )

    assert result.kinds[0] == "run_created"
    assert result.events[0].run_created.run.context.labels["case"] == "multi"
    assert [e.output_accepted.output_index for e in result.of("output_accepted")] == [0, 1, 2]
    completed = result.completed
    assert (completed.media_stored, completed.outputs_failed) == (3, 0)
    assert [o.state for o in completed.outputs] == [State.OUTPUT_STATE_SUCCEEDED] * 3
    assert [r.descriptor.format for r in result.records] == ["png", "webp", "flac"]
    assert result.records[2].descriptor.media_type == common_pb2.MEDIA_TYPE_AUDIO
    assert (result.records[0].descriptor.width, result.records[0].descriptor.height) == (32, 16)
    for record in result.records:
        data = read_object(minio_client, bucket, record.key)
        assert data == sim_output_file(sim, record.original_filename).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record.descriptor.sha256
        assert record.config_name in ("solid_image", "animated_webp", "empty_audio")
        assert record.idempotency_key == f"{result.run_id}.{record.output_index}.{record.item_index}"


async def test_summary_splits_time_into_queue_execution_and_transfer(
    gateway: Gateway, sim: SimulatorHandle
) -> None:
    completed = (await run(gateway.stub, request(output("solid_image")))).completed
    timings = completed.outputs[0].timings
    assert timings.total.ToNanoseconds() > 0
    assert timings.execution.ToNanoseconds() > 0
    assert timings.transfer.ToNanoseconds() > 0
    assert completed.timings.total.ToNanoseconds() >= timings.total.ToNanoseconds()
    assert completed.outputs[0].media_ids == [completed.outputs[0].media_ids[0]]


async def test_batch_output_stores_one_item_per_image(gateway: Gateway, sim: SimulatorHandle) -> None:
    result = await run(gateway.stub, request(output("solid_image", width=8, height=8, batch_size=3)))
    assert sorted(r.item_index for r in result.records) == [0, 1, 2]
    assert {r.output_index for r in result.records} == {0}
    assert len(result.completed.outputs[0].media_ids) == 3


async def test_get_run_and_get_media_pass_through_to_storage(gateway: Gateway, sim: SimulatorHandle) -> None:
    result = await run(gateway.stub, request(output("solid_image", width=8, height=8), output("empty_audio")))
    listed = await gateway.stub.GetRun(storage_pb2.GetRunRequest(run_id=result.run_id))
    assert [m.media_id for m in listed.media] == [r.media_id for r in result.records]
    parts = [
        p
        async for p in gateway.stub.GetMedia(storage_pb2.GetMediaRequest(media_id=result.records[1].media_id))
    ]
    assert parts[0].record.media_id == result.records[1].media_id
    data = b"".join(p.chunk for p in parts[1:])
    assert hashlib.sha256(data).hexdigest() == result.records[1].descriptor.sha256


async def test_unknown_media_and_run_are_not_found(gateway: Gateway) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.stub.GetRun(storage_pb2.GetRunRequest(run_id="no-such-run"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in gateway.stub.GetMedia(storage_pb2.GetMediaRequest(media_id="no-such-media")):
            pass
    assert caught.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)


async def test_list_workflows_passes_the_generator_catalogue_through(gateway: Gateway) -> None:
    from mediagen.v1 import generator_pb2

    names = {
        t.name for t in (await gateway.stub.ListWorkflows(generator_pb2.ListWorkflowsRequest())).templates
    }
    assert {"solid_image", "animated_webp", "empty_audio"} <= names
