"""Peer failures passed on to the gateway's caller with their details intact.

A status from the generator or storage (INVALID_ARGUMENT naming a parameter,
NOT_FOUND for a media id, ABORTED naming the failed node) is already the
answer the caller needs, so it is re-raised as a :class:`ServiceError` with the
same code, message, reason and field violations rather than flattened.
"""

from __future__ import annotations

import grpc
from google.rpc import status_pb2  # type: ignore[import-untyped]

from mediagen.scaffold.errors import ServiceError, status_details, status_of_rpc_error


def peer_error(error: grpc.RpcError, peer: str) -> ServiceError:
    status = status_of_rpc_error(error)
    info = status_details(status)
    metadata = {**info.metadata, "peer": peer}
    return ServiceError(info.code, info.message, info.reason or info.code.name, metadata, info.violations)


def status_of(error: BaseException) -> status_pb2.Status:
    """The status an output failed with, whatever raised it."""
    if isinstance(error, ServiceError):
        return error.to_status()
    if isinstance(error, grpc.RpcError):
        return status_of_rpc_error(error)
    return status_pb2.Status(code=grpc.StatusCode.INTERNAL.value[0], message=type(error).__name__)
