"""Bearer tokens on the wire, and the methods open to every caller.

Tokens are compared in constant time (:mod:`mediagen.scaffold.callers`) so
their length or prefix cannot be probed by timing. Health and reflection stay
open: orchestrators probe health without credentials, and ``grpcurl list`` is
how people find their way in (``<P>OPEN_REFLECTION=false`` closes reflection).
"""

from __future__ import annotations

OPEN_SERVICES = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
)


def is_open_method(method: str, open_reflection: bool = True) -> bool:
    """True for ``/grpc.health.v1.Health/Check`` and the other unauthenticated methods.

    Reflection is open unless ``open_reflection`` is false (``<P>OPEN_REFLECTION``).
    """
    service = method.lstrip("/").split("/", 1)[0]
    if not open_reflection and "ServerReflection" in service:
        return False
    return service in OPEN_SERVICES


def bearer_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """Metadata a client adds to each call to authenticate with ``token``."""
    return (("authorization", f"Bearer {token}"),) if token else ()
