"""Whatever a service echoes into an error, the status that reaches the caller stays small."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from mediagen.scaffold import RunningServer, ServerSettings, start_server
from mediagen.scaffold.channels import open_channel
from mediagen.scaffold.errors import (
    MAX_DESCRIPTION_BYTES,
    MAX_FIELD_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_METADATA_VALUE_BYTES,
    MAX_VIOLATIONS,
    TRUNCATED,
    status_details,
    status_of_rpc_error,
)
from mediagen.v1 import generator_pb2, generator_pb2_grpc
from tests.scaffold.probe_service import probe_spec

MiB = 1024 * 1024


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    running = await start_server(probe_spec(), ServerSettings(max_message_bytes=64 * MiB))
    yield running
    await running.stop(0)


async def test_a_megabyte_name_comes_back_as_a_bounded_status(server: RunningServer) -> None:
    name = "né" * (MiB // 2)
    jobs = [
        generator_pb2.GenerateRequest(workflow=generator_pb2.WorkflowSpec(template=name)) for _ in range(40)
    ]
    channel = open_channel(server.address, max_message_bytes=64 * MiB)
    try:
        stub = generator_pb2_grpc.GeneratorServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ValidateWorkflows(generator_pb2.ValidateWorkflowsRequest(jobs=jobs), timeout=30)  # type: ignore[attr-defined]
    finally:
        await channel.close()
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    trailers = sum(len(key) + len(value) for key, value in error.trailing_metadata() or ())
    assert trailers < 8 * 1024
    details = status_details(status_of_rpc_error(error))
    assert len(details.message.encode()) <= MAX_MESSAGE_BYTES
    assert details.message.endswith(TRUNCATED)
    assert len(details.violations) == MAX_VIOLATIONS
    assert details.violations[-1].description == f"and {40 - MAX_VIOLATIONS + 1} more violations"
    for violation in details.violations:
        assert len(violation.field.encode()) <= MAX_FIELD_BYTES
        assert len(violation.description.encode()) <= MAX_DESCRIPTION_BYTES
    assert all(len(value.encode()) <= MAX_METADATA_VALUE_BYTES for value in details.metadata.values())
    assert details.metadata["template_0"].endswith(TRUNCATED)
