"""``python -m mediagen.stack.healthcheck HOST:PORT``: exit 0 when the service is SERVING.

Containers need a probe that speaks gRPC health without shipping grpcurl or
grpc_health_probe in the image; this uses the client the image already has.
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m mediagen.stack.healthcheck HOST:PORT [SERVICE]", file=sys.stderr)
        return 2
    target = argv[1]
    with grpc.insecure_channel(target) as channel:
        try:
            request = health_pb2.HealthCheckRequest(service=argv[2] if len(argv) > 2 else "")
            reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=3)
        except grpc.RpcError as exc:
            print(f"{target}: {exc.code().name}", file=sys.stderr)  # type: ignore[attr-defined]
            return 1
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    print(f"{target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}")
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
