"""Build, start and stop a mediagen gRPC service the same way everywhere.

A service describes itself with a :class:`ServiceSpec` (its servicers, its
dependency checks, what to close on shutdown); :func:`start_server` returns a
:class:`RunningServer` with the port it bound, so tests and ``python -m``
share one path. :func:`serve` adds signal handling for a process: SIGTERM or
SIGINT turns health NOT_SERVING, stops accepting calls, lets in-flight streams
finish within the grace period, then closes the service's clients.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from mediagen.scaffold import tls, tracing
from mediagen.scaffold.flow import flow_control_options
from mediagen.scaffold.health import DependencyCheck, HealthMonitor
from mediagen.scaffold.interceptor import ScaffoldInterceptor
from mediagen.scaffold.logging import configure_logging
from mediagen.scaffold.memory import tune_allocator
from mediagen.scaffold.metrics import MetricsEndpoint
from mediagen.scaffold.settings import ServerSettings
from mediagen.tasks import cancel_and_wait

log = logging.getLogger("mediagen.server")

ServicerAdder = Callable[[Any, aio.Server], None]


@dataclass
class ServiceSpec:
    """What one service brings to the scaffold."""

    name: str
    # (full service name, add_XServicer_to_server, servicer instance)
    servicers: Sequence[tuple[str, ServicerAdder, object]]
    dependency_checks: Mapping[str, DependencyCheck] = field(default_factory=dict)
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = ()
    health_interval: float = 2.0
    # Called with the monitor once it exists, so the service can mark_down at once.
    on_health: Callable[[HealthMonitor], None] | None = None


@dataclass(kw_only=True)
class RunningServer:
    spec: ServiceSpec
    server: aio.Server
    port: int
    host: str
    health: HealthMonitor
    metrics: MetricsEndpoint | None
    grace: float
    _stopped: bool = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        """Drain and stop; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        await self.health.shutdown()
        await self.server.stop(self.grace if grace is None else grace)
        for close in self.spec.on_shutdown:
            try:
                await close()
            except Exception:  # one failing close must not keep the rest open
                log.exception("error while closing %s", self.spec.name)
        if self.metrics:
            self.metrics.close()
        tracing.flush()

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


def server_options(settings: ServerSettings) -> list[tuple[str, Any]]:
    return [
        ("grpc.so_reuseport", 0),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # A client re-resolves a dns:/// target only when a connection closes: ageing
        # connections out is what lets running gateways find replicas added later.
        ("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)),
        ("grpc.max_connection_age_grace_ms", int(settings.max_connection_age_grace_seconds * 1000)),
        *flow_control_options(),
    ]


async def start_server(spec: ServiceSpec, settings: ServerSettings) -> RunningServer:
    # Tracing's interceptor (only when on) goes first, so the scaffold's logs see the call's span.
    server = aio.server(
        interceptors=[
            ScaffoldInterceptor(spec.name, settings.caller_registry(), settings.open_reflection),
        ],
        options=server_options(settings),
    )
    names = [name for name, _, _ in spec.servicers]
    for _, add, servicer in spec.servicers:
        add(servicer, server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server,
    )
    port = _bind(server, spec.name, settings)
    monitor = HealthMonitor(health_servicer, names, spec.dependency_checks, spec.health_interval)
    if spec.on_health:
        spec.on_health(monitor)
    await server.start()
    await monitor.start()
    metrics = None
    if settings.metrics_port is not None:
        metrics = MetricsEndpoint(settings.metrics_host, settings.metrics_port)
    return RunningServer(
        spec=spec,
        server=server,
        port=port,
        host=settings.host,
        health=monitor,
        metrics=metrics,
        grace=settings.grace_seconds,
    )


def _bind(server: aio.Server, name: str, settings: ServerSettings) -> int:
    """Bind the listening port; a taken port is an error, never a silent second listener."""
    bind = f"{settings.host}:{settings.port}"
    try:
        if settings.tls_cert_file and settings.tls_key_file:
            creds = tls.server_credentials(
                settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
            )
            port = server.add_secure_port(bind, creds)
        else:
            port = server.add_insecure_port(bind)
    except RuntimeError as exc:
        raise OSError(f"{name}: cannot listen on {bind} (address in use?)") from exc
    if port == 0:
        raise OSError(f"{name}: cannot listen on {bind} (address in use?)")
    return port


SettingsT = TypeVar("SettingsT", bound=ServerSettings)


async def serve(build: Callable[[SettingsT], Awaitable[ServiceSpec]], settings: SettingsT) -> None:
    """Run one service in this process until SIGTERM/SIGINT, its allocator tuned for streaming."""
    configure_logging(settings.log_level, settings.log_format)
    tune_allocator(settings.mmap_threshold)  # before any thread has an arena
    # Before the service builds its clients, so their channels carry the trace context.
    tracing.configure(build.__module__.split(".")[0].removesuffix("_service"))
    spec = await build(settings)
    running = await start_server(spec, settings)
    mode = "mtls" if settings.tls_client_ca_file else "tls" if settings.tls_enabled else "plaintext"
    where = f"mediagen-{spec.name} listening on {running.address} ({mode})"
    if running.metrics:
        where += f", metrics on http://{settings.metrics_host}:{running.metrics.port}/metrics"
    print(where, flush=True)
    log.info(where)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(running.wait_for_termination())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down, grace %.1fs", running.grace)
    await running.stop()
    await cancel_and_wait([waiter, stopper])
    tracing.shutdown()
    print(f"mediagen-{spec.name} stopped", file=sys.stderr, flush=True)
