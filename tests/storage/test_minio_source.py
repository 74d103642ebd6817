"""The testcontainers MinIO the tests may use: a release with conditional writes, imported quietly."""

from __future__ import annotations

import subprocess
import sys

from tests.support.minio_source import MINIO_IMAGE


def test_container_import_raises_no_warning():
    code = "from testcontainers.community.minio import MinioContainer"
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_container_image_is_pinned_to_a_release_with_conditional_writes():
    """MinIO honours ``If-None-Match: *`` on PUT from its 2024 releases on (RELEASE.2024-08 and later)."""
    name, _, tag = MINIO_IMAGE.partition(":")
    assert name == "minio/minio"
    assert tag.startswith("RELEASE.")
    assert tag[len("RELEASE.") :] >= "2024-11-01"
