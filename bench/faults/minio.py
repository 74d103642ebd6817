"""A MinIO that can be SIGKILLed mid-upload and restarted as the same server.

The stack's own MinIO helper picks a fresh port and fresh credentials at each
start. After a crash we need the same address, credentials and data
directory, so that the storage service (which keeps its settings) can reach
it again and so that what the crash left on disk can be inspected.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import httpx

from mediagen.ports import free_port
from mediagen.stack.minio import MinioEndpoint, find_minio_binary


class PinnedMinio:
    def __init__(self, data_dir: Path, host: str = "127.0.0.1") -> None:
        binary = find_minio_binary()
        if binary is None:
            raise FileNotFoundError("no minio binary: run tools/bootstrap.sh or set MEDIAGEN_MINIO_BIN")
        self.binary = binary
        self.data_dir = data_dir
        self.host = host
        self.port, self.console = free_port(host), free_port(host)
        user, password = "bench-" + secrets.token_hex(4), secrets.token_urlsafe(24)
        self.endpoint = MinioEndpoint(f"{host}:{self.port}", user, password)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> MinioEndpoint:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "MINIO_ROOT_USER": self.endpoint.access_key,
            "MINIO_ROOT_PASSWORD": self.endpoint.secret_key,
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
        }
        argv = [str(self.binary), "server", str(self.data_dir), "--quiet"]
        argv += ["--address", f"{self.host}:{self.port}", "--console-address", f"{self.host}:{self.console}"]
        self.process = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"minio exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.endpoint.url}/minio/health/ready", timeout=1.0).status_code == 200:
                    return self.endpoint
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"minio did not become ready within {timeout:.0f}s")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown, nothing flushed on purpose."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
