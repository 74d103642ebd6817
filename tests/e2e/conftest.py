"""One stack of processes for the end-to-end suite, plus a gateway client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from grpc import aio

from mediagen.stack.local import LocalStack
from mediagen.stack.minio import MinioEndpoint
from mediagen.v1 import gateway_pb2_grpc
from tests.e2e.stack import running_stack, set_faults


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, minio_endpoint: MinioEndpoint) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("stack"), minio_endpoint) as started:
        yield started


@pytest.fixture
def clean_faults(stack: LocalStack) -> Iterator[LocalStack]:
    yield stack
    set_faults(stack)


@pytest.fixture
async def gateway(stack: LocalStack) -> AsyncIterator[gateway_pb2_grpc.GatewayServiceAsyncStub]:
    channel = aio.insecure_channel(stack.gateway_address)
    yield gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[misc]
    await channel.close()
