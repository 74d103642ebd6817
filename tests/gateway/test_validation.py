"""Bad requests fail at once with INVALID_ARGUMENT naming every bad field, and create nothing."""

from __future__ import annotations

import grpc
import pytest
from minio import Minio

from mediagen.scaffold.errors import status_details, status_of_rpc_error
from mediagen.v1 import gateway_pb2, generator_pb2
from tests.gateway.conftest import Gateway
from tests.gateway.runs import output, request, run


async def refused(
    gateway: Gateway, req: gateway_pb2.GatewayGenerateRequest
) -> tuple[grpc.StatusCode, list[str]]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run(gateway.stub, req)
    details = status_details(status_of_rpc_error(caught.value))
    return caught.value.code(), [v.field for v in details.violations]


async def test_no_outputs_is_invalid_argument_on_outputs(gateway: Gateway) -> None:
    assert await refused(gateway, request()) == (grpc.StatusCode.INVALID_ARGUMENT, ["outputs"])


async def test_malformed_run_id_is_invalid_argument_on_run_id(gateway: Gateway) -> None:
    code, fields = await refused(gateway, request(output("solid_image"), run_id="../escape"))
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["run_id"])


async def test_every_bad_field_is_named_and_no_run_is_created(
    gateway: Gateway, minio_client: Minio, bucket: str
) -> None:
    req = request(
        output("solid_image", width="wide"),
        output("no_such_template"),
        output("empty_audio", duration=-1.0, loudness=3),
        run_id="never-created",
    )
    code, fields = await refused(gateway, req)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(fields) == [
        "outputs[0].workflow.parameters[width]",
        "outputs[1].workflow.template",
        "outputs[2].workflow.parameters[duration]",
        "outputs[2].workflow.parameters[loudness]",
    ]
    assert list(minio_client.list_objects(bucket, recursive=True)) == []


async def test_negative_timeout_and_missing_workflow_are_refused(gateway: Gateway) -> None:
    bad_timeout = output("solid_image")
    bad_timeout.timeout.seconds = -1
    code, fields = await refused(gateway, request(bad_timeout, gateway_pb2.OutputSpec()))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields == ["outputs[0].timeout", "outputs[1].workflow.template"]


async def test_reused_run_id_is_already_exists(gateway: Gateway, sim: object) -> None:
    await run(gateway.stub, request(output("solid_image", width=8, height=8), run_id="twice"))
    code, _ = await refused(gateway, request(output("solid_image"), run_id="twice"))
    assert code == grpc.StatusCode.ALREADY_EXISTS
