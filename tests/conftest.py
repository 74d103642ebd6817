"""Session-wide fixtures: one real MinIO and one real NATS for the run, a fresh bucket per test.

A test that needs JetStream to itself (an empty store, or a server it may
restart or kill) takes ``fresh_nats``; tests sharing the session's server keep
apart by the names in ``nats_names``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio

from mediagen.stack.minio import MinioEndpoint
from mediagen.stack.nats import LocalNats, NatsEndpoint
from tests.support.minio_source import real_minio
from tests.support.nats_source import own_nats, real_nats

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def minio_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioEndpoint]:
    with real_minio(tmp_path_factory.mktemp("minio-data")) as (source, endpoint):
        print(f"\nreal MinIO from {source} at {endpoint.endpoint}")
        yield endpoint


@pytest.fixture(scope="session")
def nats_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsEndpoint]:
    with real_nats(tmp_path_factory.mktemp("nats")) as (source, endpoint):
        print(f"\nreal NATS from {source} at {endpoint.url}")
        yield endpoint


@pytest.fixture
def fresh_nats(tmp_path: Path) -> Iterator[LocalNats]:
    """A nats-server of this test's own with an empty JetStream store."""
    with own_nats(tmp_path / "nats") as server:
        yield server


@pytest.fixture
def nats_names() -> str:
    """A prefix for stream and bucket names no other test uses (letters, digits, dashes)."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def minio_client(minio_endpoint: MinioEndpoint) -> Minio:
    return minio_endpoint.client()


@pytest.fixture
def bucket(minio_client: Minio) -> Iterator[str]:
    """A bucket of this test's own, emptied and removed afterwards."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    minio_client.make_bucket(name)
    yield name
    empty_and_remove_bucket(minio_client, name)


def empty_and_remove_bucket(client: Minio, name: str) -> None:
    for upload in client._list_multipart_uploads(name).uploads:
        if upload.object_name and upload.upload_id:
            client._abort_multipart_upload(name, upload.object_name, upload.upload_id)
    for obj in client.list_objects(name, recursive=True):
        if obj.object_name:
            client.remove_object(name, obj.object_name)
    client.remove_bucket(name)
