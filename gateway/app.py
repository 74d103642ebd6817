"""Builds the gateway's :class:`ServiceSpec`: its servicer, peer channels and health.

The gateway is SERVING only while both peers answer their own health checks,
so an orchestrator never routes a run to a gateway that could not finish it.
NATS is not one of them: without it the gateway still runs Generate, and the
durable-run calls answer UNAVAILABLE until it is back.
"""

from __future__ import annotations

from gateway.peers import open_peers
from gateway.runs.engine import RunEngine
from gateway.servicer import GatewayServicer
from gateway.settings import GatewaySettings
from mediagen.scaffold import ServiceSpec
from mediagen.v1 import gateway_pb2_grpc

SERVICE_NAME = "mediagen.v1.GatewayService"


async def build_spec(settings: GatewaySettings) -> ServiceSpec:
    peers = open_peers(settings)
    runs = RunEngine(peers, settings)
    await runs.start()
    servicer = GatewayServicer(peers, settings, runs)
    return ServiceSpec(
        name="gateway",
        servicers=[(SERVICE_NAME, gateway_pb2_grpc.add_GatewayServiceServicer_to_server, servicer)],
        dependency_checks={"generator": peers.check_generator, "storage": peers.check_storage},
        on_shutdown=[runs.close, peers.close],
    )
