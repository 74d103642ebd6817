"""Is it up yet? Probes for gRPC health and for HTTP endpoints.

Each probe answers once and never raises, so a launcher can poll it while
watching the process it started.
"""

from __future__ import annotations

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mediagen.v1 import gateway_pb2, gateway_pb2_grpc


def grpc_serving(address: str, service: str = "") -> bool:
    """True when ``address`` answers a health check with SERVING."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=1.0
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def runs_answer(address: str) -> bool:
    """False while the gateway at ``address`` answers ListRuns UNAVAILABLE (not joined NATS yet).

    Any other answer means the engine is past connecting: OK, or an error that
    waiting will not change (durable runs switched off, a token required).
    """
    with grpc.insecure_channel(address) as channel:
        try:
            gateway_pb2_grpc.GatewayServiceStub(channel).ListRuns(
                gateway_pb2.ListRunsRequest(page_size=1), timeout=1.0
            )
        except grpc.RpcError as err:
            return err.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)  # type: ignore[attr-defined]
    return True


def http_answers(url: str) -> bool:
    """True when ``url`` answers 200."""
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
