"""A LocalStack for a test module: every part a process, MinIO from the session.

The simulator runs as a process too, so its faults are set over HTTP
(``POST /sim/faults``) exactly as one would against a deployed simulator.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from mediagen.stack.local import LocalStack, StackConfig
from mediagen.stack.minio import MinioEndpoint


@contextmanager
def running_stack(work_dir: Path, minio: MinioEndpoint, **config: Any) -> Iterator[LocalStack]:
    bucket = f"e2e-{uuid.uuid4().hex[:16]}"
    stack = LocalStack(
        StackConfig(
            work_dir=work_dir, minio=minio, bucket=bucket, comfyui_url="", comfyui_command="", **config
        )
    )
    with stack:
        yield stack
    client = minio.client()
    if client.bucket_exists(bucket):
        from tests.conftest import empty_and_remove_bucket

        empty_and_remove_bucket(client, bucket)


def set_faults(stack: LocalStack, **faults: Any) -> None:
    response = httpx.post(f"{stack.comfyui_url}/sim/faults", json={"reset": True, **faults}, timeout=5)
    response.raise_for_status()


def sim_state(stack: LocalStack) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(f"{stack.comfyui_url}/sim/state", timeout=5).json()
    return state


def sim_file(stack: LocalStack, filename: str) -> Path:
    matches = list((stack.simulator_data_dir / "output").rglob(filename))
    assert len(matches) == 1, f"expected one {filename} in the simulator's output, found {matches}"
    return matches[0]


def run_demo(cwd: Path, timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m mediagen.demo --out out`` (what ``make demo`` runs) in ``cwd``, on its embedded
    defaults: no ComfyUI setting from this environment, only those in ``env``."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("MEDIAGEN_COMFYUI_")}
    return subprocess.run(
        [sys.executable, "-m", "mediagen.demo", "--out", "out"],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
