"""Client channels to mediagen services, with the scaffold's auth and TLS.

One long-lived channel per peer: it carries the bearer token and the current
request id on every call, and takes a gRPC service config so several targets
(``dns:///generator:50051`` with round_robin) and retries of idempotent reads need no code.
With certificate files, a :class:`RotatingChannel` opens its connections anew when the files
change (a rotated client certificate or CA) and lets the calls on the old ones finish.
Calls that start work are never retried by the channel: :func:`refused_before_start` is what
decides whether asking again is safe.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

from mediagen.scaffold import tls, tracing
from mediagen.scaffold.auth import bearer_metadata
from mediagen.scaffold.errors import REFUSED_BEFORE_START, status_details, status_of_rpc_error
from mediagen.scaffold.flow import flow_control_options
from mediagen.scaffold.interceptor import REQUEST_ID_KEY
from mediagen.scaffold.logging import current_log_ids

log = logging.getLogger("mediagen.channels")

# Calls running on a connection made with replaced credentials may go on this long.
RETIRED_CHANNEL_GRACE = 3600.0


class _WithMetadata:
    """A multi-callable that adds the bearer token, the request id being served and (tracing on) the
    trace context to its calls.

    This is done on the call's own ``metadata`` rather than by a client interceptor: grpc.aio
    runs every intercepted call through an extra task and wrapper call objects, which cost
    more CPU than a small call itself.
    """

    __slots__ = ("_auth", "_auth_keys", "_call")

    def __init__(self, call: Any, auth: tuple[tuple[str, str], ...]) -> None:
        self._call = call
        self._auth = auth
        self._auth_keys = {key for key, _ in auth}

    def __call__(self, *args: Any, metadata: Any = None, **kwargs: Any) -> Any:
        return self._call(*args, metadata=self._metadata(metadata), **kwargs)

    def _metadata(self, given: Any) -> tuple[tuple[str, Any], ...]:
        pairs = [(key, value) for key, value in (given or ()) if key not in self._auth_keys]
        pairs.extend(self._auth)
        request_id = current_log_ids().get("request_id")
        if request_id and not any(key == REQUEST_ID_KEY for key, _ in pairs):
            pairs.append((REQUEST_ID_KEY, request_id))
        # The W3C traceparent of the current span: the callee's server span continues the trace.
        trace: dict[str, str] = {}
        tracing.inject(trace)
        pairs.extend(trace.items())
        return tuple(pairs)


class _MetadataChannel(aio.Channel):
    """A channel whose calls carry the bearer token and the request id (see :class:`_WithMetadata`)."""

    def __init__(self, channel: aio.Channel, token: str | None) -> None:
        self._channel = channel
        self._auth = tuple(bearer_metadata(token))

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return _WithMetadata(self._channel.unary_unary(method, *args, **kwargs), self._auth)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return _WithMetadata(self._channel.unary_stream(method, *args, **kwargs), self._auth)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return _WithMetadata(self._channel.stream_unary(method, *args, **kwargs), self._auth)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return _WithMetadata(self._channel.stream_stream(method, *args, **kwargs), self._auth)

    async def __aenter__(self) -> _MetadataChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._channel.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._channel.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._channel.channel_ready()


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
    if ca_file or cert_file:
        return RotatingChannel(
            lambda creds: _MetadataChannel(aio.secure_channel(target, creds, options=options), token),
            tls.FileCredentials(ca_file, cert_file, key_file),
        )
    if use_tls:
        return _MetadataChannel(aio.secure_channel(target, tls.channel_credentials(), options=options), token)
    return _MetadataChannel(aio.insecure_channel(target, options=options), token)


class _Latest:
    """A multi-callable that calls through the owner's newest channel."""

    def __init__(self, owner: RotatingChannel, kind: str, method: str, kwargs: dict[str, Any]) -> None:
        self._owner, self._kind, self._method, self._kwargs = owner, kind, method, kwargs
        self._bound: tuple[aio.Channel, Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        channel = self._owner.latest()
        if self._bound is None or self._bound[0] is not channel:
            self._bound = (channel, getattr(channel, self._kind)(self._method, **self._kwargs))
        return self._bound[1](*args, **kwargs)


def _through_latest(kind: str) -> Any:
    """``RotatingChannel``'s multi-callable factory of one call kind (``"unary_stream"`` ...)."""

    def multicallable(
        self: RotatingChannel,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> Any:
        kwargs = {"request_serializer": request_serializer, "response_deserializer": response_deserializer}
        return _Latest(self, kind, method, kwargs)

    multicallable.__name__ = multicallable.__qualname__ = kind
    return multicallable


class RotatingChannel(aio.Channel):
    """A channel whose TLS credentials are re-read from their files when those change.

    Each call looks (at most once a second, see :mod:`mediagen.scaffold.tls`) whether the
    files changed; if they did, a new channel with the new credentials takes the new calls,
    and the old one closes once its running calls have finished (within
    ``RETIRED_CHANNEL_GRACE``), so a rotation drops nothing.
    """

    def __init__(
        self, make: Callable[[grpc.ChannelCredentials], aio.Channel], credentials: tls.FileCredentials
    ) -> None:
        self._make = make
        self._credentials = credentials
        self._channel = make(credentials.current)
        self._retired: list[aio.Channel] = []
        self._retiring: set[asyncio.Task[None]] = set()

    def latest(self) -> aio.Channel:
        fresh = self._credentials.refreshed()
        if fresh is not None:
            old, self._channel = self._channel, self._make(fresh)
            self._retired.append(old)
            task = asyncio.get_running_loop().create_task(old.close(RETIRED_CHANNEL_GRACE))
            self._retiring.add(task)
            task.add_done_callback(lambda done: self._retire_done(done, old))
        return self._channel

    # The four multi-callable factories of aio.Channel differ only in the kind they ask the newest
    # channel for: one definition serves all four.
    unary_unary = _through_latest("unary_unary")
    unary_stream = _through_latest("unary_stream")
    stream_unary = _through_latest("stream_unary")
    stream_stream = _through_latest("stream_stream")

    def _retire_done(self, task: asyncio.Task[None], channel: aio.Channel) -> None:
        self._retiring.discard(task)
        if channel in self._retired:
            self._retired.remove(channel)

    async def __aenter__(self) -> RotatingChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*(channel.close(grace) for channel in [*self._retired, self._channel]))

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._channel.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._channel.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self.latest().channel_ready()


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
