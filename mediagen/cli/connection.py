"""Where the CLI finds the gateway and how it authenticates.

The target comes from ``--gateway`` or ``MEDIAGEN_GATEWAY``; the bearer token
only from the environment (``MEDIAGEN_TOKEN``), so a secret is never typed on a
command line. TLS files come from ``--ca-file``, ``--cert-file`` and ``--key-file``
or ``MEDIAGEN_CA_FILE``, ``MEDIAGEN_CERT_FILE`` and ``MEDIAGEN_KEY_FILE``: a CA
alone is TLS, a certificate and its key too are mutual TLS.
"""

from __future__ import annotations

import os
from pathlib import Path

from grpc import aio

from mediagen.cli.params import BadParameter
from mediagen.scaffold.channels import open_channel
from mediagen.v1 import gateway_pb2_grpc

DEFAULT_GATEWAY = "127.0.0.1:50051"
MiB = 1024 * 1024


def gateway_target(flag: str | None) -> str:
    return flag or os.environ.get("MEDIAGEN_GATEWAY") or DEFAULT_GATEWAY


def tls_file(flag: Path | None, variable: str) -> Path | None:
    """A TLS file from its flag, else from its environment variable."""
    value = flag or os.environ.get(variable)
    return Path(value) if value else None


def open_gateway(
    target: str,
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
) -> tuple[aio.Channel, gateway_pb2_grpc.GatewayServiceAsyncStub]:
    cert = tls_file(cert_file, "MEDIAGEN_CERT_FILE")
    key = tls_file(key_file, "MEDIAGEN_KEY_FILE")
    if (cert is None) != (key is None):
        raise BadParameter("a client certificate needs its key: set both --cert-file and --key-file")
    channel = open_channel(
        target,
        token=os.environ.get("MEDIAGEN_TOKEN") or None,
        ca_file=tls_file(ca_file, "MEDIAGEN_CA_FILE"),
        cert_file=cert,
        key_file=key,
        max_message_bytes=16 * MiB,
    )
    return channel, gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[return-value]
