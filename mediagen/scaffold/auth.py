"""Bearer-token authentication for service-to-service calls.

The token is compared in constant time so its length or prefix cannot be
probed by timing. Health and reflection stay open: orchestrators probe health
without credentials, and ``grpcurl list`` is how people find their way in.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

OPEN_SERVICES = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
)


def is_open_method(method: str) -> bool:
    """True for ``/grpc.health.v1.Health/Check`` and the other unauthenticated methods."""
    service = method.lstrip("/").split("/", 1)[0]
    return service in OPEN_SERVICES


def token_matches(metadata: Sequence[tuple[str, str | bytes]] | None, expected: str) -> bool:
    supplied = ""
    for key, value in metadata or ():
        if key == "authorization":
            supplied = value.decode() if isinstance(value, bytes) else value
            break
    scheme, _, token = supplied.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def bearer_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """Metadata a client adds to each call to authenticate with ``token``."""
    return (("authorization", f"Bearer {token}"),) if token else ()
