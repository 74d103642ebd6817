"""``python -m mediagen.stack.healthcheck HOST:PORT [SERVICE]``: exit 0 when the service is SERVING.

Containers need a probe that speaks gRPC health without shipping grpcurl or
grpc_health_probe in the image; this uses the client the image already has.

A service that serves TLS is probed over TLS: ``--ca-file`` (the CA that signed
the service's certificate), and for a service that requires client
certificates ``--cert-file`` and ``--key-file``. Each flag falls back to an
environment variable (``MEDIAGEN_HEALTHCHECK_CA_FILE``, ``..._CERT_FILE``,
``..._KEY_FILE``), then to the client's own (``MEDIAGEN_CA_FILE``,
``MEDIAGEN_CERT_FILE``, ``MEDIAGEN_KEY_FILE``), so one image-wide ``HEALTHCHECK``
line serves plaintext and TLS deployments alike. ``--tls`` alone trusts the system roots.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mediagen.scaffold.tls import channel_credentials

ENV_PREFIX = "MEDIAGEN_HEALTHCHECK_"


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mediagen.stack.healthcheck",
        description="Exit 0 when the gRPC service at TARGET reports SERVING.",
    )
    parser.add_argument("target", metavar="HOST:PORT")
    parser.add_argument("service", nargs="?", default="", help="a service name; the whole server if unset")
    parser.add_argument("--tls", action="store_true", help="speak TLS (implied by any file below)")
    for name, what in (
        ("ca-file", "CA certificate the service's certificate is checked against"),
        ("cert-file", "client certificate, for a service that requires one"),
        ("key-file", "the client certificate's private key"),
    ):
        variable = ENV_PREFIX + name.replace("-", "_").upper()
        fallback = "MEDIAGEN_" + name.replace("-", "_").upper()
        parser.add_argument(
            f"--{name}",
            type=Path,
            default=os.environ.get(variable) or os.environ.get(fallback) or None,
            help=f"{what} (${variable}, else ${fallback})",
        )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")
    args = parser.parse_args(argv)
    if (args.cert_file is None) != (args.key_file is None):
        parser.error("--cert-file and --key-file go together")
    return args


def _channel(args: argparse.Namespace) -> grpc.Channel:
    if not (args.tls or args.ca_file or args.cert_file):
        return grpc.insecure_channel(args.target)
    credentials = channel_credentials(args.ca_file, args.cert_file, args.key_file)
    return grpc.secure_channel(args.target, credentials)


def main(argv: list[str]) -> int:
    args = _arguments(argv[1:])
    try:
        channel = _channel(args)
    except OSError as exc:
        print(f"{args.target}: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    with channel:
        try:
            request = health_pb2.HealthCheckRequest(service=args.service)
            reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=args.timeout)
        except grpc.RpcError as exc:
            print(f"{args.target}: {exc.code().name}", file=sys.stderr)  # type: ignore[attr-defined]
            return 1
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    print(f"{args.target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}")
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
