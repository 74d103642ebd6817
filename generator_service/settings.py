"""Generator settings, read from ``MEDIAGEN_GENERATOR_*`` environment variables.

ComfyUI is reached either by URL (attached mode: another party runs it) or by
a command the generator starts and supervises (managed mode), or both. Every
time limit a caller can ask for is capped here, so one request cannot hold a
GPU for longer than the operator allows.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from generator_service.process import check_command
from generator_service.providers.config import BackendConfig
from mediagen.nats_client import NatsTlsSettings
from mediagen.scaffold import ServerSettings

KiB = 1024


class GeneratorSettings(ServerSettings, NatsTlsSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIAGEN_GENERATOR_", extra="ignore")

    comfyui_urls: str = Field(default="", description="comma-separated ComfyUI base URLs (attached mode)")
    backends: list[BackendConfig] = Field(
        default_factory=list,
        description="JSON list of backends of any kind: "
        '[{"kind": "images_api", "url": ..., "key_env": "OPENAI_API_KEY", "max_concurrency": 4}]',
    )
    comfyui_command: str = Field(
        default="",
        description="command starting one ComfyUI (managed mode): split like a shell would (shlex) but "
        "run without one, {host} {port} {data_dir} {instance} replaced wherever they appear",
    )
    comfyui_workdir: Path | None = Field(
        default=None, description="working directory of the command (default: the generator's)"
    )
    comfyui_instances: int = Field(default=1, ge=1, le=64, description="managed processes to run")
    comfyui_host: str = "127.0.0.1"
    comfyui_base_port: int = Field(
        default=0, ge=0, le=65535, description="first managed port (then +1 ...); 0 picks free ports"
    )
    comfyui_data_dir: Path | None = Field(
        default=None, description="managed data dir; instance i uses <dir>/<i>; a temp dir when unset"
    )
    comfyui_start_timeout: float = Field(
        default=120.0, gt=0, description="a managed ComfyUI must answer within this after each start"
    )
    comfyui_stop_seconds: float = Field(
        default=3.0,
        ge=0,
        description="on shutdown, SIGKILL a managed ComfyUI still running this long after SIGTERM",
    )
    restart_backoff_initial: float = Field(default=0.5, gt=0)
    restart_backoff_max: float = Field(default=30.0, gt=0)
    default_timeout: float = Field(
        default=300.0, gt=0, description="job time limit when the caller sets none"
    )
    max_timeout: float = Field(default=3600.0, gt=0, description="cap on any job's time limit")
    max_queue_per_backend: int = Field(default=8, ge=1)
    place_wait_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description=(
            "how long a job waits here for a place when every backend is full before it is refused "
            "BACKENDS_FULL (so that its caller may try another replica), when its request sets no "
            "place_wait; never past the call's deadline"
        ),
    )
    max_place_wait_seconds: float = Field(
        default=10.0,
        ge=0,
        le=600,
        description=(
            "cap on a request's place_wait: a caller waiting this long at one replica is refused, "
            "so it may find room at another"
        ),
    )
    watchdog_quiet_seconds: float = Field(
        default=5.0, gt=0, description="cross-check /queue and /history after this much silence"
    )
    poll_interval: float = Field(default=0.5, gt=0, description="polling period while events are missing")
    progress_interval_seconds: float = Field(
        default=0.5,
        ge=0,
        le=10,
        description=(
            "a job's progress of one stage is reported at most about once per this many seconds "
            "(the newest report follows; a new stage goes out at once), and a waiting job's queue "
            "position is looked up as often"
        ),
    )
    backend_lost_seconds: float = Field(
        default=3.0, gt=0, description="a job whose backend stays unreachable this long fails UNAVAILABLE"
    )
    cancel_wait_seconds: float = Field(default=5.0, gt=0)
    history_retry_seconds: float = Field(default=2.0, gt=0)
    http_timeout: float = Field(default=30.0, gt=0)
    chunk_size: int = Field(
        default=1024 * KiB,
        ge=4 * KiB,
        le=4 * 1024 * KiB,
        description="media bytes per message (at least; a chunk may exceed it by less than one read)",
    )
    client_id_prefix: str = Field(default="mediagen", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    output_prefix: str = Field(
        default="mediagen", pattern=r"^[A-Za-z0-9_-]{1,40}$", description="output subfolder for job files"
    )
    templates_dir: Path | None = Field(default=None, description="extra/override templates directory")
    state_dir: Path | None = Field(
        default=None,
        description="journal of prompts in flight when nats_url is empty, cleaned up after a crash; "
        "one per replica (default: <comfyui_data_dir>/generator-state, else the user's cache "
        "directory, else a temporary directory when that cannot be created)",
    )
    nats_url: str = Field(
        default="",
        description="NATS server(s) with JetStream, comma-separated, for the journal of prompts in "
        "flight shared by all replicas (a dead replica's prompts freed by any other); empty: state_dir",
    )
    nats_prefix: str = Field(
        default="GENERATOR", pattern=r"^[A-Z0-9_]{1,32}$", description="prefix of the journal's bucket names"
    )
    nats_replicas: int = Field(default=1, ge=1, le=5, description="replicas of each bucket (3 in production)")
    lease_seconds: float = Field(
        default=3.0,
        ge=1.0,
        description="a replica whose lease in NATS is not renewed for this long is dead: its prompts "
        "are adopted and cleaned up by another replica",
    )

    @model_validator(mode="after")
    def _needs_backend(self) -> GeneratorSettings:
        if not self.urls and not self.comfyui_command and not self.backends:
            raise ValueError("set comfyui_urls (attached), comfyui_command (managed) or backends")
        if self.default_timeout > self.max_timeout:
            raise ValueError("default_timeout must not exceed max_timeout")
        if self.comfyui_command:
            check_command(self.comfyui_command)
        if self.comfyui_workdir is not None and not self.comfyui_workdir.is_dir():
            raise ValueError(f"comfyui_workdir {self.comfyui_workdir} is not a directory")
        return self

    @property
    def journal_dir(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        if self.comfyui_data_dir is not None:
            return self.comfyui_data_dir / "generator-state"
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(cache) / "mediagen" / "generator-state"

    @property
    def urls(self) -> list[str]:
        listed = [url.strip().rstrip("/") for url in self.comfyui_urls.split(",") if url.strip()]
        return listed + [b.url.rstrip("/") for b in self.backends if b.kind == "comfyui"]
