"""Gateway settings, read from ``MEDIAGEN_GATEWAY_*`` environment variables.

Peer addresses accept anything gRPC resolves (``dns:///generator:50051`` with
several A records is balanced round robin), so scaling the generator out needs
no code. Tokens the gateway presents to its peers are secrets and never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from mediagen.nats_client import NatsTlsSettings
from mediagen.scaffold import ServerSettings

KiB = 1024
MiB = 1024 * KiB


class GatewaySettings(ServerSettings, NatsTlsSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIAGEN_GATEWAY_", extra="ignore")

    generator_target: str = Field(default="127.0.0.1:50052", min_length=1)
    storage_target: str = Field(default="127.0.0.1:50053", min_length=1)
    generator_token: SecretStr | None = Field(default=None, description="bearer token for the generator")
    storage_token: SecretStr | None = Field(default=None, description="bearer token for storage")
    peer_ca_file: Path | None = Field(default=None, description="CA of the peers' TLS certificates")
    peer_tls: bool = Field(default=False, description="use TLS to the peers with the system roots")
    peer_cert_file: Path | None = Field(
        default=None, description="client certificate the gateway presents to its peers (mutual TLS)"
    )
    peer_key_file: Path | None = Field(default=None, description="the peer client certificate's key")
    default_output_timeout: float = Field(default=300.0, gt=0, description="seconds per output when unset")
    transfer_allowance: float = Field(
        default=120.0, gt=0, description="seconds added to an output's timeout for moving its media"
    )
    max_concurrency: int = Field(default=4, ge=1, le=64, description="cap on outputs generated at once")
    queue_depth: int = Field(default=8, ge=1, le=1024, description="chunks buffered between the streams")
    start_wait: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description=(
            "seconds a generator call refused before anything started (BACKENDS_FULL, NO_BACKEND) "
            "is asked again, never past the caller's deadline or the output's time limit; 0: never"
        ),
    )
    run_start_wait: float = Field(
        default=1.5,
        ge=0,
        le=3600,
        description=(
            "start_wait for a durable run's output: a short wait, then the run goes back to its queue "
            "(where priorities order it) instead of holding a worker"
        ),
    )
    retry_backoff: float = Field(default=0.1, gt=0, description="first retry delay in seconds, doubled")
    retry_backoff_max: float = Field(default=1.0, gt=0, description="longest delay between two retries")
    workflows_cache_seconds: float = Field(default=30.0, ge=0, description="ListWorkflows cache lifetime")
    max_request_bytes: int = Field(default=6 * MiB, ge=1024, description="largest Generate request")
    max_outputs: int = Field(default=64, ge=1, description="outputs per run")
    max_parameters: int = Field(default=64, ge=1, description="parameters per output")
    max_string_bytes: int = Field(
        default=64 * KiB, ge=64, description="longest string value, template or parameter name"
    )
    max_graph_bytes: int = Field(default=1 * MiB, ge=1024, description="longest raw graph JSON")
    max_context_bytes: int = Field(
        default=64 * KiB, ge=256, description="largest run context (stored with the run, read back by GetRun)"
    )
    max_input_bytes: int = Field(default=4 * MiB, ge=1024, description="largest input media file")
    caller_max_running: int = Field(
        default=0,
        ge=0,
        description="Generate runs one caller may have going at once in this gateway; 0: no limit",
    )
    caller_max_queued: int = Field(
        default=0, ge=0, description="durable runs one caller may have queued or running; 0: no limit"
    )

    # Durable runs (SubmitRun and friends), see gateway/runs/.
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        description="NATS server(s) with JetStream, comma-separated; empty turns durable runs off",
    )
    role: Literal["api", "worker", "both"] = Field(
        default="both",
        description="api answers the run RPCs, worker executes queued runs, both does both",
    )
    run_retention: float = Field(
        default=7 * 24 * 3600.0, gt=0, description="seconds a run's events and state are kept in NATS"
    )
    queue_cap: int = Field(
        default=10_000, ge=1, description="runs waiting or running per priority; SubmitRun beyond it fails"
    )
    worker_runs: int = Field(default=2, ge=1, le=64, description="runs one worker executes at once")
    claim_seconds: float = Field(
        default=6.0,
        ge=1.0,
        description="a worker's claim on a run lapses this long after its last heartbeat (ack wait)",
    )
    max_worker_deaths: int = Field(
        default=5,
        ge=1,
        description="a run whose worker died this many times is FAILED instead of resumed",
    )
    requeue_delay: float = Field(
        default=2.0, gt=0, description="seconds a run waits after the generator had no room for it"
    )
    caller_queue_idle_seconds: float = Field(
        default=86_400.0,
        ge=3600.0,
        description=(
            "NATS removes a caller's queue consumer unused this long (a worker makes it again for "
            "the caller's next run); at least an hour, longer than any run"
        ),
    )
    nats_replicas: int = Field(default=1, ge=1, le=5, description="replicas of each stream (3 in production)")
    nats_prefix: str = Field(
        default="RUNS", pattern=r"^[A-Z0-9_]{1,32}$", description="prefix of stream and bucket names"
    )

    @model_validator(mode="after")
    def _peer_pair(self) -> GatewaySettings:
        if (self.peer_cert_file is None) != (self.peer_key_file is None):
            raise ValueError("peer_cert_file and peer_key_file must be set together")
        return self

    @property
    def heartbeat_seconds(self) -> float:
        """A live worker renews its claim three times per claim period."""
        return self.claim_seconds / 3
