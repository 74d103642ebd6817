"""Where the CLI finds the gateway and how it authenticates.

The target comes from ``--gateway`` or ``MEDIAGEN_GATEWAY``; the bearer token
and a TLS CA file only from the environment (``MEDIAGEN_TOKEN``,
``MEDIAGEN_CA_FILE``), so a secret is never typed on a command line.
"""

from __future__ import annotations

import os
from pathlib import Path

from grpc import aio

from mediagen.scaffold.channels import open_channel
from mediagen.v1 import gateway_pb2_grpc

DEFAULT_GATEWAY = "127.0.0.1:50051"
MiB = 1024 * 1024


def gateway_target(flag: str | None) -> str:
    return flag or os.environ.get("MEDIAGEN_GATEWAY") or DEFAULT_GATEWAY


def open_gateway(target: str) -> tuple[aio.Channel, gateway_pb2_grpc.GatewayServiceAsyncStub]:
    ca_file = os.environ.get("MEDIAGEN_CA_FILE")
    channel = open_channel(
        target,
        token=os.environ.get("MEDIAGEN_TOKEN") or None,
        ca_file=Path(ca_file) if ca_file else None,
        max_message_bytes=16 * MiB,
    )
    return channel, gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[return-value]
