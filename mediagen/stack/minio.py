"""A MinIO server for local use: found, started, waited for and stopped.

The binary is the community edition built from source by
``tools/bootstrap.sh`` into the user's cache directory (or given with
``MEDIAGEN_MINIO_BIN``, or found on PATH). Credentials are generated per
process and handed over in the environment, never written to disk or logs.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from minio import Minio

from mediagen.ports import free_port
from mediagen.stack.process import terminate_then_kill


@dataclass(frozen=True)
class MinioEndpoint:
    """How to reach an S3 server; ``endpoint`` is host:port."""

    endpoint: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    secure: bool = False
    region: str = "us-east-1"

    def client(self) -> Minio:
        return Minio(self.endpoint, self.access_key, self.secret_key, secure=self.secure, region=self.region)

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mediagen"
    return Path(os.environ.get("MEDIAGEN_CACHE_DIR", default))


def find_minio_binary() -> Path | None:
    explicit = os.environ.get("MEDIAGEN_MINIO_BIN")
    if explicit:
        return Path(explicit)
    cached = cache_dir() / "bin" / "minio"
    if cached.exists():
        return cached
    found = shutil.which("minio")
    return Path(found) if found else None


class LocalMinio:
    """One ``minio server`` process on loopback ports, with throwaway credentials."""

    new_session = False
    """Whether the server runs in a session of its own, out of reach of the terminal's signals."""

    def __init__(self, data_dir: Path, binary: Path | None = None, host: str = "127.0.0.1") -> None:
        found = binary or find_minio_binary()
        if found is None:
            raise FileNotFoundError("no minio binary: run tools/bootstrap.sh or set MEDIAGEN_MINIO_BIN")
        self.binary = found
        self.data_dir = data_dir
        self.host = host
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoint: MinioEndpoint | None = None

    def address(self) -> tuple[MinioEndpoint, int]:
        """The endpoint (with its credentials) and console port of the next start: fresh ones."""
        port, console = free_port(self.host), free_port(self.host)
        user, password = "mediagen-" + secrets.token_hex(4), secrets.token_urlsafe(24)
        return MinioEndpoint(f"{self.host}:{port}", user, password), console

    def start(self, timeout: float = 30.0) -> MinioEndpoint:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        endpoint, console = self.address()
        env = {
            **os.environ,
            "MINIO_ROOT_USER": endpoint.access_key,
            "MINIO_ROOT_PASSWORD": endpoint.secret_key,
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
        }
        argv = [str(self.binary), "server", str(self.data_dir), "--quiet"]
        argv += ["--address", endpoint.endpoint, "--console-address", f"{self.host}:{console}"]
        self.process = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=self.new_session,
        )
        self.endpoint = endpoint
        self._wait_ready(timeout)
        return self.endpoint

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        assert self.endpoint is not None
        deadline = time.monotonic() + timeout
        url = f"{self.endpoint.url}/minio/health/ready"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"minio exited with {self.process.returncode}: {err.strip()[-500:]}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"minio did not become ready within {timeout:.0f}s")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown, nothing flushed on purpose."""
        if self.process is not None and self.process.poll() is None:
            if self.new_session:
                os.killpg(self.process.pid, signal.SIGKILL)
            else:
                self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process:
            terminate_then_kill(self.process, kill=self.kill)
        if self.process and self.process.stderr:
            self.process.stderr.close()

    def __enter__(self) -> MinioEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
