"""A part of the stack dying mid-run: the caller hears a clear status within seconds, nothing partial stays.

Each test kills a process, so each brings up a stack of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc import aio

from mediagen.stack.local import LocalStack
from mediagen.stack.minio import MinioEndpoint
from mediagen.v1 import gateway_pb2_grpc
from tests.e2e.stack import running_stack, set_faults
from tests.gateway.runs import RunEvents, output, request

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024


@pytest.fixture
async def own_stack(tmp_path: Path, minio_endpoint: MinioEndpoint) -> AsyncIterator[LocalStack]:
    with running_stack(tmp_path, minio_endpoint) as stack:
        yield stack


async def run_until_killed(stack: LocalStack, victim: str) -> tuple[RunEvents, float]:
    """Start a slow large transfer, kill ``victim`` once bytes flow; (events, seconds to the end)."""
    set_faults(stack, view_bytes_per_s=8 * MiB)
    events = RunEvents()
    async with aio.insecure_channel(stack.gateway_address) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        call = stub.Generate(request(output("large_image", size_bytes=64 * MiB, seed=5)), timeout=60)
        killed_at = 0.0
        async for event in call:
            events.events.append(event)
            if event.WhichOneof("event") == "output_accepted":
                await asyncio.sleep(1.5)
                stack.processes[victim].kill()
                killed_at = time.monotonic()
    return events, time.monotonic() - killed_at


def no_partial_media(stack: LocalStack, minio_endpoint: MinioEndpoint) -> bool:
    client = minio_endpoint.client()
    uploads = client._list_multipart_uploads(stack.bucket).uploads
    media = [o for o in client.list_objects(stack.bucket, recursive=True) if "/media/" in o.object_name]
    return not uploads and not media


async def test_generator_killed_mid_transfer_fails_the_output_quickly(
    own_stack: LocalStack, minio_endpoint: MinioEndpoint
) -> None:
    events, after_kill = await run_until_killed(own_stack, "generator")
    failed = events.of("output_failed")[0].output_failed
    assert failed.status.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert events.completed.outputs_failed == 1
    assert after_kill < 5
    deadline = time.monotonic() + 8
    while not no_partial_media(own_stack, minio_endpoint):
        assert time.monotonic() < deadline, "partial media left behind"
        await asyncio.sleep(0.2)


async def test_comfyui_killed_mid_transfer_fails_the_output_quickly(
    own_stack: LocalStack, minio_endpoint: MinioEndpoint
) -> None:
    events, after_kill = await run_until_killed(own_stack, "comfyui-sim")
    failed = events.of("output_failed")[0].output_failed
    assert failed.status.code in (grpc.StatusCode.UNAVAILABLE.value[0], grpc.StatusCode.DATA_LOSS.value[0])
    assert after_kill < 10
    deadline = time.monotonic() + 8
    while not no_partial_media(own_stack, minio_endpoint):
        assert time.monotonic() < deadline, "partial media left behind"
        await asyncio.sleep(0.2)
