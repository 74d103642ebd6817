"""Through the gateway with every part a process: what the simulator made is what MinIO holds."""

from __future__ import annotations

import asyncio
import io
import time

import av
import grpc
import pytest
from PIL import Image

from mediagen.stack.local import LocalStack
from mediagen.stack.minio import MinioEndpoint
from mediagen.v1 import gateway_pb2, storage_pb2
from tests.e2e.stack import set_faults, sim_file, sim_state
from tests.gateway.runs import output, request, run
from tests.support.minio_source import read_object

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024


async def test_stored_objects_are_byte_identical_and_valid_media(
    stack: LocalStack, gateway, minio_endpoint: MinioEndpoint
) -> None:
    result = await run(
        gateway,
        request(
            output("solid_image", width=64, height=48, color=0x123456),
            output("animated_webp", width=32, height=32, frames=4),
            output("empty_audio", duration=0.5),
        ),
    )
    assert (result.completed.media_stored, result.completed.outputs_failed) == (3, 0)
    minio = minio_endpoint.client()
    image, animation, audio = (read_object(minio, stack.bucket, r.key) for r in result.records)
    for record, data in zip(result.records, (image, animation, audio), strict=True):
        assert record.bucket == stack.bucket
        assert data == sim_file(stack, record.original_filename).read_bytes()
        assert len(data) == record.descriptor.size_bytes
    assert Image.open(io.BytesIO(image)).size == (64, 48)
    assert Image.open(io.BytesIO(animation)).size == (32, 32)
    with av.open(io.BytesIO(audio), mode="r") as container:
        assert container.streams.audio[0].codec_context.name == "flac"
        assert container.duration is not None
        assert abs(container.duration / av.time_base - 0.5) < 0.05


async def test_one_failing_output_leaves_the_others_stored(clean_faults: LocalStack, gateway) -> None:
    set_faults(clean_faults, fail_nodes={"EmptyAudio": "injected failure"})
    result = await run(gateway, request(output("empty_audio", duration=0.25), output("solid_image", color=7)))
    failed = result.of("output_failed")[0].output_failed
    assert (failed.output_index, failed.status.code) == (0, grpc.StatusCode.ABORTED.value[0])
    assert [r.output_index for r in result.records] == [1]
    listed = await gateway.GetRun(storage_pb2.GetRunRequest(run_id=result.run_id))
    assert [m.media_id for m in listed.media] == [result.records[0].media_id]


async def test_cancel_mid_transfer_leaves_nothing_in_minio(
    clean_faults: LocalStack, gateway, minio_endpoint: MinioEndpoint
) -> None:
    set_faults(clean_faults, view_bytes_per_s=8 * MiB)
    minio = minio_endpoint.client()
    call = gateway.Generate(request(output("large_image", size_bytes=40 * MiB, seed=1), run_id="e2e-cancel"))
    async for event in call:
        if event.WhichOneof("event") == "output_accepted":
            break
    deadline = time.monotonic() + 10
    while not minio._list_multipart_uploads(clean_faults.bucket).uploads:
        assert time.monotonic() < deadline, "the upload never started"
        await asyncio.sleep(0.05)
    call.cancel()
    deadline = time.monotonic() + 8
    while minio._list_multipart_uploads(clean_faults.bucket).uploads:
        assert time.monotonic() < deadline, "a multipart upload was left behind"
        await asyncio.sleep(0.1)
    objects = [
        o.object_name
        for o in minio.list_objects(clean_faults.bucket, prefix="runs/e2e-cancel/", recursive=True)
    ]
    assert not [name for name in objects if "/media/" in name]
    assert not (await gateway.GetRun(storage_pb2.GetRunRequest(run_id="e2e-cancel"))).media


async def test_sixteen_concurrent_runs_all_land(stack: LocalStack, gateway) -> None:
    requests = [request(output("solid_image", width=16, height=16, color=1000 + n)) for n in range(16)]
    results = await asyncio.gather(*(run(gateway, req, deadline=90) for req in requests))
    assert all(r.completed.media_stored == 1 and r.completed.outputs_failed == 0 for r in results)
    assert len({r.records[0].key for r in results}) == 16
    for result in results:
        listed = await gateway.GetRun(storage_pb2.GetRunRequest(run_id=result.run_id))
        assert len(listed.media) == 1
    assert not sim_state(stack)["running"]


async def test_concurrency_runs_outputs_of_one_run_side_by_side(stack: LocalStack, gateway) -> None:
    outputs = [output("solid_image", width=8, height=8, color=2000 + n) for n in range(3)]
    result = await run(gateway, request(*outputs, concurrency=3))
    assert sorted(o.output_index for o in result.completed.outputs) == [0, 1, 2]
    assert all(o.state == gateway_pb2.OUTPUT_STATE_SUCCEEDED for o in result.completed.outputs)
