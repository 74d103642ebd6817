"""Health that tells the truth about a service's dependencies.

A service reports SERVING only while every dependency it needs answers (MinIO
for storage, a ComfyUI backend for the generator, both peers for the gateway).
Checks run in the background at a fixed interval, and a service that sees a
dependency fail mid-call can report it at once with :meth:`mark_down`, so the
orchestrator stops routing to it without waiting for the next round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from mediagen.tasks import cancel_and_wait

log = logging.getLogger("mediagen.health")

DependencyCheck = Callable[[], Awaitable[None]]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthMonitor:
    """Keeps the gRPC health service in step with the dependency checks."""

    def __init__(
        self,
        servicer: health_aio.HealthServicer,
        service_names: Iterable[str],
        checks: Mapping[str, DependencyCheck],
        interval: float = 2.0,
        timeout: float = 3.0,
    ) -> None:
        self.servicer = servicer
        self._names = ["", *service_names]
        self._checks = dict(checks)
        self._interval = interval
        self._timeout = timeout
        self._failures: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._shutting_down = False

    @property
    def serving(self) -> bool:
        return not self._failures and not self._shutting_down

    @property
    def failures(self) -> dict[str, str]:
        """Dependency name → why it is down."""
        return dict(self._failures)

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="health-monitor")

    async def refresh(self) -> None:
        results = await asyncio.gather(*(self._run(name, check) for name, check in self._checks.items()))
        self._failures = {name: why for name, why in results if why}
        await self._publish()

    async def mark_down(self, dependency: str, why: str) -> None:
        if self._failures.get(dependency) != why:
            log.warning("dependency %s is down: %s", dependency, why)
        self._failures[dependency] = why
        await self._publish()

    async def shutdown(self) -> None:
        """NOT_SERVING from now on, so load balancers drain us before we stop."""
        self._shutting_down = True
        if self._task:
            await cancel_and_wait([self._task])
        await self.servicer.enter_graceful_shutdown()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except Exception:  # a check that misbehaves must not stop the loop
                log.exception("health refresh failed")

    async def _run(self, name: str, check: DependencyCheck) -> tuple[str, str]:
        try:
            await asyncio.wait_for(check(), self._timeout)
        except Exception as exc:  # noqa: BLE001 - every failure means "down", with its reason
            return name, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return name, ""

    async def _publish(self) -> None:
        if self._shutting_down:
            return
        status = SERVING if not self._failures else NOT_SERVING
        for name in self._names:
            await self.servicer.set(name, status)
