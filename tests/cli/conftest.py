"""The ``mediagen`` command run as a user runs it, against a stack of processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mediagen.stack.local import LocalStack
from mediagen.stack.minio import MinioEndpoint
from tests.e2e.stack import running_stack

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, minio_endpoint: MinioEndpoint) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("cli-stack"), minio_endpoint) as started:
        yield started


@pytest.fixture
def mediagen(stack: LocalStack, tmp_path: Path) -> Cli:
    """Runs ``python -m mediagen.cli ARGS`` in a fresh directory against the stack."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "MEDIAGEN_GATEWAY": stack.gateway_address, "COLUMNS": "200", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "mediagen.cli", *args],
            cwd=tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return invoke
