"""A whole mediagen stack on this machine, every part its own process.

MinIO (the local binary, unless an endpoint is handed in), NATS with
JetStream (the local ``nats-server``, with a store of this stack's own, unless
an endpoint is handed in), a ComfyUI (the simulator, unless
``MEDIAGEN_COMFYUI_URL`` or ``MEDIAGEN_COMFYUI_COMMAND`` names a real one, the
command run in ``MEDIAGEN_COMFYUI_WORKDIR``), then storage, generator and
gateway, each waited for until its gRPC health says SERVING; a part that exits
first fails the start with the end of its log (a ComfyUI command that cannot
start is reported by the generator there). Used as a context manager, sync or
async; the parts stop in reverse order, SIGTERM first. Everything they write
stays in ``work_dir``. With ``remote_simulators`` the Images API and
predictions simulators start too, each with a fresh key, and the generator
declares them as backends.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from mediagen.ports import free_port, port_if_free
from mediagen.stack import parts
from mediagen.stack.minio import LocalMinio, MinioEndpoint
from mediagen.stack.nats import LocalNats, NatsEndpoint
from mediagen.stack.process import ManagedProcess
from mediagen.stack.readiness import grpc_serving, http_answers, runs_answer


@dataclass
class StackConfig:
    work_dir: Path
    minio: MinioEndpoint | None = None
    nats: NatsEndpoint | None = None
    bucket: str = "mediagen"
    comfyui_url: str = field(default_factory=lambda: os.environ.get("MEDIAGEN_COMFYUI_URL", ""))
    comfyui_command: str = field(default_factory=lambda: os.environ.get("MEDIAGEN_COMFYUI_COMMAND", ""))
    comfyui_workdir: str = field(default_factory=lambda: os.environ.get("MEDIAGEN_COMFYUI_WORKDIR", ""))
    simulator_args: tuple[str, ...] = ()
    # Ports to listen on by part name when free (`make stack`: the well-known ones); else any.
    ports: dict[str, int] = field(default_factory=dict)
    # ComfyUI simulators started (each its own process), all in the generator's pool.
    simulators: int = 1
    # Gateway processes beyond the first that only execute queued runs (role worker).
    gateway_workers: int = 0
    worker_env: dict[str, str] = field(default_factory=dict)
    storage_env: dict[str, str] = field(default_factory=dict)
    generator_env: dict[str, str] = field(default_factory=dict)
    gateway_env: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    start_timeout: float = 60.0
    log_format: str = "text"
    remote_simulators: bool = False
    """Also run the Images API and predictions simulators as backends of those kinds."""


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.processes: dict[str, ManagedProcess] = {}
        self.addresses: dict[str, str] = {}
        self.minio: MinioEndpoint | None = config.minio
        self.nats: NatsEndpoint | None = config.nats
        self._local_nats: LocalNats | None = None
        self.comfyui_url = config.comfyui_url
        self.remote_urls: dict[str, str] = {}
        """Each remote simulator's URL by backend kind."""
        self._remote_keys: dict[str, str] = {}
        self.comfyui_urls: list[str] = [config.comfyui_url] if config.comfyui_url else []
        self._envs: dict[str, dict[str, str]] = {}
        self._local_minio: LocalMinio | None = None

    @property
    def gateway_address(self) -> str:
        return self.addresses["gateway"]

    @property
    def bucket(self) -> str:
        return self.config.bucket

    @property
    def simulated(self) -> bool:
        return not (self.config.comfyui_url or self.config.comfyui_command)

    @property
    def simulator_data_dir(self) -> Path:
        return self.config.work_dir / "comfyui"

    @property
    def log_dir(self) -> Path:
        return self.config.work_dir / "logs"

    def pids(self) -> dict[str, int]:
        pids = {name: process.pid for name, process in self.processes.items()}
        if self._local_nats is not None and self._local_nats.process is not None:
            pids["nats"] = self._local_nats.process.pid
        return pids

    def start(self) -> LocalStack:
        try:
            self._start_minio()
            self._start_nats()
            self._start_backends()
            self._start(
                "gateway",
                "gateway",
                parts.gateway_env(
                    self._port("gateway"),
                    self.addresses["generator"],
                    self.addresses["storage"],
                    self._nats_url(),
                    self.config.gateway_env,
                ),
            )
            self._wait_serving("gateway")
            self._start_workers()
            self._wait_runs_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.processes[name].stop()
        if self._local_nats is not None:
            self._local_nats.stop()
            self._local_nats = None
        if self._local_minio is not None:
            self._local_minio.stop()
            self._local_minio = None

    def _start_minio(self) -> None:
        if self.minio is None:
            self._local_minio = LocalMinio(self.config.work_dir / "minio", host=self.config.host)
            self.minio = self._local_minio.start()

    def _start_nats(self) -> None:
        if self.nats is None:
            self._local_nats = LocalNats(self.config.work_dir / "nats", host=self.config.host)
            self.nats = self._local_nats.start(self.config.start_timeout)

    def _nats_url(self) -> str:
        assert self.nats is not None
        return self.nats.url

    def _start_backends(self) -> None:
        """Simulator and storage start together; the generator once its ComfyUI answers."""
        if self.simulated:
            self._start_simulator()
        if self.config.remote_simulators:
            self._start_remote_simulators()
        assert self.minio is not None
        self._start(
            "storage",
            "storage_service",
            parts.storage_env(self._port("storage"), self.minio, self.config.bucket, self.config.storage_env),
        )
        if self.simulated:
            for index, url in enumerate(self.comfyui_urls):
                self.processes[_simulator_name(index)].wait_until(
                    functools.partial(http_answers, f"{url}/system_stats"),
                    self.config.start_timeout,
                    "answering",
                )
        for kind, url in self.remote_urls.items():
            probe = functools.partial(http_answers, f"{url}/sim/requests")
            self.processes[f"{kind}-sim"].wait_until(probe, self.config.start_timeout, "answering")
        remote = {kind: (url, _key_env(kind)) for kind, url in self.remote_urls.items()}
        self._start(
            "generator",
            "generator_service",
            {
                **parts.remote_backends_env(remote),
                **self._remote_keys,
                **parts.generator_env(
                    self._port("generator"),
                    ",".join(self.comfyui_urls),
                    self.config.comfyui_command,
                    {
                        "MEDIAGEN_GENERATOR_NATS_URL": self._nats_url(),
                        **self._managed_env(),
                        **self.config.generator_env,
                    },
                ),
            },
        )
        self._wait_serving("storage")
        self._wait_serving("generator")

    def _managed_env(self) -> dict[str, str]:
        """A managed ComfyUI's data (outputs, inputs) lives in the work dir, and goes with it."""
        if not self.config.comfyui_command:
            return {}
        env = {"MEDIAGEN_GENERATOR_COMFYUI_DATA_DIR": str(self.config.work_dir / "comfyui-managed")}
        if self.config.comfyui_workdir:
            env["MEDIAGEN_GENERATOR_COMFYUI_WORKDIR"] = self.config.comfyui_workdir
        return env

    def _start_simulator(self) -> None:
        self.comfyui_urls = []
        for index in range(max(1, self.config.simulators)):
            port = free_port(self.config.host)
            self.comfyui_urls.append(f"http://{self.config.host}:{port}")
            data_dir = (
                self.simulator_data_dir if index == 0 else self.config.work_dir / f"comfyui-{index + 1}"
            )
            argv = parts.simulator_argv(self.config.host, port, data_dir, self.config.simulator_args)
            name = _simulator_name(index)
            self.processes[name] = ManagedProcess(name, argv, parts.base_env(), self.log_dir / f"{name}.log")
        self.comfyui_url = self.comfyui_urls[0]

    def _start_workers(self) -> None:
        """Gateways that only take runs from the queue, as a deployment scales workers."""
        names = [f"worker-{index + 1}" for index in range(self.config.gateway_workers)]
        for name in names:
            env = parts.gateway_env(
                self._port(name),
                self.addresses["generator"],
                self.addresses["storage"],
                self._nats_url(),
                {**self.config.gateway_env, "MEDIAGEN_GATEWAY_ROLE": "worker", **self.config.worker_env},
            )
            self._start(name, "gateway", env)
        for name in names:
            self._wait_serving(name)

    def _wait_runs_ready(self) -> None:
        """The gateway joins NATS after it serves; durable-run calls work once it has."""
        address = self.addresses["gateway"]
        self.processes["gateway"].wait_until(
            lambda: runs_answer(address), self.config.start_timeout, "connected to NATS"
        )

    def _start_remote_simulators(self) -> None:
        for kind in parts.REMOTE_SIMULATORS:
            port = free_port(self.config.host)
            self.remote_urls[kind] = f"http://{self.config.host}:{port}"
            key_env = _key_env(kind)
            self._remote_keys[key_env] = secrets.token_hex(16)
            argv = parts.remote_simulator_argv(kind, self.config.host, port, key_env)
            env = {**parts.base_env(), key_env: self._remote_keys[key_env]}
            self.processes[f"{kind}-sim"] = ManagedProcess(
                f"{kind}-sim", argv, env, self.log_dir / f"{kind}-sim.log"
            )

    def respawn(self, name: str) -> None:
        """Start a stopped or killed part again with the same command and settings."""
        process = self.processes[name]
        if process.running:
            raise RuntimeError(f"{name} is still running")
        self.processes[name] = ManagedProcess(name, process.argv, self._envs[name], process.log_path)
        if name in self.addresses:
            self._wait_serving(name)

    def _port(self, name: str) -> int:
        wanted = self.config.ports.get(name)
        port = (wanted and port_if_free(wanted, self.config.host)) or free_port(self.config.host)
        self.addresses[name] = f"{self.config.host}:{port}"
        return port

    def _start(self, name: str, module: str, env: dict[str, str]) -> None:
        full_env = {**parts.base_env(self.config.log_format), **env}
        self._envs[name] = full_env
        self.processes[name] = ManagedProcess(
            name, parts.service_argv(module), full_env, self.log_dir / f"{name}.log"
        )

    def _wait_serving(self, name: str) -> None:
        address = self.addresses[name]
        self.processes[name].wait_until(lambda: grpc_serving(address), self.config.start_timeout, "SERVING")

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LocalStack:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


def _key_env(kind: str) -> str:
    """The variable that carries a remote simulator's key to it and to the generator."""
    return f"MEDIAGEN_STACK_{kind.upper()}_KEY"


def _simulator_name(index: int) -> str:
    return "comfyui-sim" if index == 0 else f"comfyui-sim-{index + 1}"
