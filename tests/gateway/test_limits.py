"""The gateway's limits refuse oversized requests at the edge, naming the limit and its value."""

from __future__ import annotations

import grpc
import pytest
from minio import Minio

from mediagen.scaffold.errors import MAX_MESSAGE_BYTES, StatusDetails, status_details, status_of_rpc_error
from mediagen.v1 import gateway_pb2, generator_pb2, storage_pb2
from tests.gateway.conftest import Gateway
from tests.gateway.runs import output, request, run

KiB = 1024
MiB = 1024 * KiB


async def refused(gateway: Gateway, req: gateway_pb2.GatewayGenerateRequest) -> tuple[StatusDetails, int]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run(gateway.stub, req)
    trailers = sum(len(key) + len(value) for key, value in caught.value.trailing_metadata() or ())
    return status_details(status_of_rpc_error(caught.value)), trailers


def many_parameters(count: int) -> gateway_pb2.OutputSpec:
    spec = output("solid_image")
    for i in range(count):
        spec.workflow.parameters[f"p{i}"].int_value = i
    return spec


def with_input(size: int) -> gateway_pb2.OutputSpec:
    spec = output("sd15_img2img", prompt="a")
    spec.workflow.inputs.add(parameter="image", filename="big.png", data=b"\x89PNG\r\n\x1a\n" + bytes(size))
    return spec


@pytest.mark.parametrize(
    ("build", "field", "limit", "value"),
    [
        (lambda: request(output("n" * MiB)), "outputs[0].workflow.template", "max_string_bytes", 64 * KiB),
        (
            lambda: request(output("sd15_txt2img", prompt="p" * (65 * KiB))),
            "outputs[0].workflow.parameters[prompt]",
            "max_string_bytes",
            64 * KiB,
        ),
        (
            lambda: request(output("solid_image"), labels={"note": "x" * (100 * KiB)}),
            "context",
            "max_context_bytes",
            64 * KiB,
        ),
        (lambda: request(*[output("solid_image")] * 65), "outputs", "max_outputs", 64),
        (lambda: request(many_parameters(65)), "outputs[0].workflow.parameters", "max_parameters", 64),
        (
            lambda: request(with_input(5 * MiB)),
            "outputs[0].workflow.inputs[0].data",
            "max_input_bytes",
            4 * MiB,
        ),
        (
            lambda: request(
                gateway_pb2.OutputSpec(workflow=generator_pb2.WorkflowSpec(raw_graph_json=" " * (MiB + 1)))
            ),
            "outputs[0].workflow.raw_graph_json",
            "max_graph_bytes",
            MiB,
        ),
        (lambda: request(*[with_input(3 * MiB)] * 2), "request", "max_request_bytes", 6 * MiB),
    ],
)
async def test_limits_are_enforced_with_the_limit_in_the_details(
    gateway: Gateway, minio_client: Minio, bucket: str, build, field: str, limit: str, value: int
) -> None:
    req = build()
    req.run_id = "never-created"
    details, trailers = await refused(gateway, req)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "LIMIT_EXCEEDED"
    assert details.metadata[limit] == str(value)
    assert field in [v.field for v in details.violations]
    assert len(details.message.encode()) <= MAX_MESSAGE_BYTES
    assert trailers < 8 * KiB
    assert list(minio_client.list_objects(bucket, recursive=True)) == []


async def test_a_run_within_the_limits_can_be_read_back(gateway: Gateway, sim: object) -> None:
    req = request(output("solid_image", width=8, height=8), labels={"note": "x" * (60 * KiB)})
    result = await run(gateway.stub, req)
    fetched = await gateway.stub.GetRun(storage_pb2.GetRunRequest(run_id=result.run_id), timeout=30)  # type: ignore[attr-defined]
    assert fetched.run.context.labels["note"] == "x" * (60 * KiB)
