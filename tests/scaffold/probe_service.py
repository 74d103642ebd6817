"""A small servicer to exercise the scaffold with: it speaks the real generated API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from mediagen.scaffold import ServerSettings, ServiceSpec, start_server
from mediagen.scaffold.errors import FieldViolation, ServiceError, invalid_argument
from mediagen.v1 import common_pb2, generator_pb2, generator_pb2_grpc
from tests.support.certs import Pki

SERVICE = "mediagen.v1.GeneratorService"


class ProbeServicer(generator_pb2_grpc.GeneratorServiceServicer):
    def __init__(self, events: int = 3, interval: float = 0.2) -> None:
        self.events = events
        self.interval = interval

    async def ListWorkflows(self, request: Any, context: Any) -> generator_pb2.ListWorkflowsResponse:
        raise invalid_argument("workflow.template", "no template named 'nope'")

    async def ValidateWorkflows(self, request: Any, context: Any) -> generator_pb2.ValidateWorkflowsResponse:
        """Echoes every job's template into an error, as a careless service would."""
        names = [job.workflow.template for job in request.jobs]
        raise ServiceError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"unknown templates {names!r}",
            "UNKNOWN_TEMPLATE",
            {f"template_{i}": name for i, name in enumerate(names)},
            [
                FieldViolation(f"jobs[{i}].workflow.template[{name}]", f"no template {name!r}")
                for i, name in enumerate(names)
            ],
        )

    async def GetBackendStatus(self, request: Any, context: Any) -> generator_pb2.GetBackendStatusResponse:
        raise RuntimeError("a bug in the servicer")

    async def Generate(self, request: Any, context: Any) -> AsyncIterator[generator_pb2.GenerateEvent]:
        for step in range(self.events):
            await asyncio.sleep(self.interval)
            yield generator_pb2.GenerateEvent(progress=common_pb2.Progress(value=step + 1, max=self.events))


class Switch:
    """A dependency whose health the test flips."""

    def __init__(self) -> None:
        self.up = True

    async def check(self) -> None:
        if not self.up:
            raise ConnectionError("switched off")


def probe_spec(servicer: ProbeServicer | None = None, switch: Switch | None = None) -> ServiceSpec:
    checks = {"switch": switch.check} if switch else {}
    return ServiceSpec(
        "probe",
        [(SERVICE, generator_pb2_grpc.add_GeneratorServiceServicer_to_server, servicer or ProbeServicer())],
        dependency_checks=checks,
        health_interval=0.1,
    )


@asynccontextmanager
async def serving_probe(settings: ServerSettings) -> AsyncIterator[str]:
    """The probe service on an ephemeral port for the ``with`` block; yields ``localhost:PORT``."""
    running = await start_server(probe_spec(), settings)
    try:
        yield f"localhost:{running.port}"
    finally:
        await running.stop(0)


def tls_settings(pki: Pki, mutual: bool = False) -> ServerSettings:
    """TLS with the test CA's server certificate; ``mutual``: clients need one of its certificates."""
    return ServerSettings(
        tls_cert_file=pki.server_cert,
        tls_key_file=pki.server_key,
        tls_client_ca_file=pki.ca_cert if mutual else None,
    )
