"""Nothing stored twice rests on ``If-None-Match: *``: storage refuses a server that ignores it."""

from __future__ import annotations

import pytest

from bench.faults.s3_relay import S3Relay
from mediagen.stack.minio import MinioEndpoint
from storage_service.app import build_spec
from tests.storage.conftest import storage_settings


async def test_storage_refuses_to_start_on_a_server_that_ignores_if_none_match(
    minio_endpoint: MinioEndpoint, bucket: str
):
    relay = S3Relay(minio_endpoint.endpoint, ignore_if_none_match=True)
    relayed = MinioEndpoint(await relay.start(), minio_endpoint.access_key, minio_endpoint.secret_key)
    try:
        with pytest.raises(SystemExit) as refused:
            await build_spec(storage_settings(relayed, bucket))
    finally:
        await relay.stop()
    assert "If-None-Match" in str(refused.value)
    assert "storage cannot start" in str(refused.value)


async def test_storage_starts_on_a_server_that_honours_it(minio_endpoint: MinioEndpoint, bucket: str):
    relay = S3Relay(minio_endpoint.endpoint)
    relayed = MinioEndpoint(await relay.start(), minio_endpoint.access_key, minio_endpoint.secret_key)
    try:
        spec = await build_spec(storage_settings(relayed, bucket))
        for stop in spec.on_shutdown:
            await stop()
    finally:
        await relay.stop()
    assert spec.name == "storage"
