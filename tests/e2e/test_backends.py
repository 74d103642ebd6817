"""One run through the gateway with outputs from all three backend kinds, every part a process.

ComfyUI (its simulator), the Images API and the predictions API (their simulators) each make one
output; what MinIO holds is checked against what the generator streamed (size, sha256) and each
record names the backend that made it.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from grpc import aio
from PIL import Image

from mediagen.stack.local import LocalStack
from mediagen.stack.minio import MinioEndpoint
from mediagen.v1 import gateway_pb2_grpc, storage_pb2
from tests.e2e.stack import running_stack
from tests.gateway.runs import output, request, run
from tests.support.minio_source import read_object

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def kinds_stack(
    tmp_path_factory: pytest.TempPathFactory, minio_endpoint: MinioEndpoint
) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("kinds"), minio_endpoint, remote_simulators=True) as started:
        yield started


@pytest.fixture
async def kinds_gateway(kinds_stack: LocalStack) -> AsyncIterator[gateway_pb2_grpc.GatewayServiceAsyncStub]:
    channel = aio.insecure_channel(kinds_stack.gateway_address)
    yield gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[misc]
    await channel.close()


async def test_one_run_stores_an_output_of_each_kind(
    kinds_stack: LocalStack,
    kinds_gateway: gateway_pb2_grpc.GatewayServiceAsyncStub,
    minio_endpoint: MinioEndpoint,
) -> None:
    result = await run(
        kinds_gateway,
        request(
            output("solid_image", width=64, height=48, color=0x123456),
            output("gpt_image", prompt="a lighthouse at dusk", n=2, output_format="png"),
            output("flux_schnell", prompt="a fox in snow", output_format="webp", megapixels="0.25"),
            concurrency=3,
        ),
        deadline=120,
    )
    assert (result.completed.media_stored, result.completed.outputs_failed) == (4, 0)
    by_output: dict[int, list[storage_pb2.MediaRecord]] = {}
    for record in result.records:
        by_output.setdefault(record.output_index, []).append(record)
    assert {i: sorted(r.item_index for r in records) for i, records in by_output.items()} == {
        0: [0],
        1: [0, 1],
        2: [0],
    }
    assert {r.backend for r in by_output[0]} == {"comfyui-0"}
    assert {r.backend for r in by_output[1]} == {"images_api-sim"}
    assert {r.backend for r in by_output[2]} == {"predictions-sim"}
    minio = minio_endpoint.client()
    for record in result.records:
        data = read_object(minio, kinds_stack.bucket, record.key)
        assert len(data) == record.descriptor.size_bytes
        assert hashlib.sha256(data).hexdigest() == record.descriptor.sha256
    gpt = by_output[1][0]
    assert (gpt.descriptor.mime_type, gpt.descriptor.width, gpt.descriptor.height) == (
        "image/png",
        1024,
        1024,
    )
    flux = by_output[2][0]
    assert flux.descriptor.mime_type == "image/webp"
    assert Image.open(io.BytesIO(read_object(minio, kinds_stack.bucket, flux.key))).size == (512, 512)
    listed = await kinds_gateway.GetRun(storage_pb2.GetRunRequest(run_id=result.run_id))
    assert sorted(m.backend for m in listed.media) == [
        "comfyui-0",
        "images_api-sim",
        "images_api-sim",
        "predictions-sim",
    ]


async def test_rate_limited_outputs_are_retried_within_the_run(
    kinds_stack: LocalStack, kinds_gateway: gateway_pb2_grpc.GatewayServiceAsyncStub
) -> None:
    images, predictions = kinds_stack.remote_urls["images_api"], kinds_stack.remote_urls["predictions"]
    async with httpx.AsyncClient(timeout=5) as http:
        for url in (images, predictions):
            faults = {"rate_limit_burst": 1, "retry_after_s": 0.3}
            (await http.post(f"{url}/sim/faults", json=faults)).raise_for_status()
    result = await run(
        kinds_gateway,
        request(
            output("gpt_image", prompt="again"), output("flux_schnell", prompt="again", megapixels="0.25")
        ),
        deadline=120,
    )
    assert (result.completed.media_stored, result.completed.outputs_failed) == (2, 0)
    async with httpx.AsyncClient(timeout=5) as http:
        for url in (images, predictions):
            statuses = [entry["status"] for entry in (await http.get(f"{url}/sim/requests")).json()]
            assert 429 in statuses
