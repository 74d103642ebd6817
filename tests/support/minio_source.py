"""Where the tests get a real MinIO from, in order of preference.

1. An endpoint named in the environment (``MEDIAGEN_TEST_MINIO_ENDPOINT`` with
   ``..._ACCESS_KEY``, ``..._SECRET_KEY`` and optionally ``..._SECURE=1``).
2. A testcontainers MinIO container, when a Docker engine answers, pinned to
   :data:`MINIO_IMAGE`: a release that honours ``If-None-Match: *`` (storage
   refuses to start on one that does not; testcontainers' default image is
   older than conditional writes).
3. The local ``minio`` binary installed by ``tools/bootstrap.sh``.
There is never an in-memory stand-in: storage behaviour is only worth testing
against the real server.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from minio import Minio

from mediagen.stack.minio import LocalMinio, MinioEndpoint

MINIO_IMAGE = "minio/minio:RELEASE.2025-04-22T22-12-26Z"


def _from_environment() -> MinioEndpoint | None:
    endpoint = os.environ.get("MEDIAGEN_TEST_MINIO_ENDPOINT")
    if not endpoint:
        return None
    return MinioEndpoint(
        endpoint,
        os.environ["MEDIAGEN_TEST_MINIO_ACCESS_KEY"],
        os.environ["MEDIAGEN_TEST_MINIO_SECRET_KEY"],
        secure=os.environ.get("MEDIAGEN_TEST_MINIO_SECURE", "") in ("1", "true"),
    )


def _docker_answers() -> bool:
    # A failed ping leaks docker-py's socket (a ResourceWarning, an error here), so ask only
    # when an engine could be there at all.
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
    except Exception:  # noqa: BLE001 - no client library, no socket, no engine: all mean "no"
        return False
    return True


@contextlib.contextmanager
def _container() -> Iterator[MinioEndpoint]:
    from testcontainers.community.minio import MinioContainer

    with MinioContainer(image=MINIO_IMAGE) as container:
        config = container.get_config()
        yield MinioEndpoint(config["endpoint"], config["access_key"], config["secret_key"])


@contextlib.contextmanager
def real_minio(data_dir: Path) -> Iterator[tuple[str, MinioEndpoint]]:
    """Yields (where it came from, endpoint)."""
    env = _from_environment()
    if env:
        yield "environment", env
    elif _docker_answers():
        with _container() as endpoint:
            yield "testcontainers", endpoint
    else:
        with LocalMinio(data_dir) as endpoint:
            yield "local binary", endpoint


def read_object(client: Minio, bucket: str, key: str) -> bytes:
    """A stored object's bytes, its connection handed back to the pool."""
    response = client.get_object(bucket, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()
