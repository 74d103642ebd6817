"""Client channels to mediagen services, with the scaffold's auth and TLS.

One long-lived channel per peer: it carries the bearer token and the current
request id on every call, and takes a gRPC service config so several targets
(``dns:///generator:50051`` with round_robin) and retries of idempotent reads need no code.
Calls that start work are never retried by the channel: :func:`refused_before_start` is what
decides whether asking again is safe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

from mediagen.scaffold import tls
from mediagen.scaffold.auth import bearer_metadata
from mediagen.scaffold.errors import REFUSED_BEFORE_START, status_details, status_of_rpc_error
from mediagen.scaffold.flow import flow_control_options
from mediagen.scaffold.interceptor import REQUEST_ID_KEY
from mediagen.scaffold.logging import current_log_ids


class _CallMetadata:
    """Adds the bearer token and the request id being served to every call."""

    def __init__(self, token: str | None) -> None:
        self._auth = bearer_metadata(token)

    def _details(self, details: aio.ClientCallDetails) -> aio.ClientCallDetails:
        metadata = aio.Metadata(*(details.metadata or ()))
        for key, value in self._auth:
            metadata[key] = value
        request_id = current_log_ids().get("request_id")
        if request_id and metadata.get(REQUEST_ID_KEY) is None:
            metadata[REQUEST_ID_KEY] = request_id
        return aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# grpc.aio files each interceptor under the first call kind it matches, so one
# class per kind is needed for the metadata to reach every kind of call.
class _UnaryUnary(_CallMetadata, aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(details), request)


class _UnaryStream(_CallMetadata, aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(details), request)


class _StreamUnary(_CallMetadata, aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._details(details), request_iterator)


class _StreamStream(_CallMetadata, aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._details(details), request_iterator)


def open_channel(
    target: str,
    *,
    token: str | None = None,
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    use_tls: bool = False,
    max_message_bytes: int = 8 * 1024 * 1024,
    service_config: Mapping[str, Any] | None = None,
) -> aio.Channel:
    """A channel to ``target``; TLS when ``use_tls`` or any certificate file is given."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.enable_retries", 1),
        *flow_control_options(),
    ]
    if service_config:
        options.append(("grpc.service_config", json.dumps(service_config)))
    interceptors: list[aio.ClientInterceptor] = [
        kind(token) for kind in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
    ]
    if use_tls or ca_file or cert_file:
        creds = tls.channel_credentials(ca_file, cert_file, key_file)
        return aio.secure_channel(target, creds, options=options, interceptors=interceptors)
    return aio.insecure_channel(target, options=options, interceptors=interceptors)


def refused_before_start(error: grpc.RpcError) -> bool:
    """The peer said, with a reason in ``REFUSED_BEFORE_START``, that it did nothing.

    Only then is asking again safe. A bare RESOURCE_EXHAUSTED or UNAVAILABLE proves nothing: a
    message over a size limit or a connection lost after the job was queued look just the same,
    and retrying those would run the job again.
    """
    info = status_details(status_of_rpc_error(error))
    return info.reason in REFUSED_BEFORE_START and info.code in (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAVAILABLE,
    )
