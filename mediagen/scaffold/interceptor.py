"""One interceptor that applies the scaffold's policies to every call.

In order: name the caller (:mod:`mediagen.scaffold.callers`) or refuse a call without valid
credentials, bind the caller and its request id to the logs, count and time the call, open its
trace span when tracing is on, and turn a :class:`ServiceError` into its rich status. An
unexpected exception becomes INTERNAL with a log line, so a bug is visible but never hangs the
caller.
"""

from __future__ import annotations

import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from grpc import aio

from mediagen.scaffold import auth, metrics, tracing
from mediagen.scaffold.callers import ANONYMOUS, Caller, CallerRegistry, reset_caller, set_caller
from mediagen.scaffold.errors import ServiceError, to_grpc_status
from mediagen.scaffold.logging import log_context

log = logging.getLogger("mediagen.rpc")
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

REQUEST_ID_KEY = "x-request-id"


class ScaffoldInterceptor(aio.ServerInterceptor):
    def __init__(
        self, service_name: str, callers: CallerRegistry | None = None, open_reflection: bool = True
    ) -> None:
        self._service = service_name
        self._callers = callers or CallerRegistry()
        self._open_reflection = open_reflection
        self._meters: dict[tuple[str, str], _MethodMeters] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        if auth.is_open_method(method, self._open_reflection):
            return handler
        metadata = details.invocation_metadata
        request_id = _request_id(details)
        kind = _GRPC_TYPES[(handler.request_streaming, handler.response_streaming)]
        return _rewrap(handler, lambda behavior: self._observed(behavior, method, request_id, metadata, kind))

    def _identify(self, metadata: Any, context: aio.ServicerContext[Any, Any]) -> Caller | None:
        if not self._callers.names_by_certificate:
            return self._callers.identify(metadata)
        names = list(context.auth_context().get("x509_common_name", ()))
        return self._callers.identify(metadata, names)

    def _observed(
        self, behavior: Callable[..., Any], method: str, request_id: str, metadata: Any, kind: str
    ) -> Callable[..., Any]:
        service, short = method.lstrip("/").rsplit("/", 1)
        meters = self._meters.get((kind, method))
        if meters is None:
            meters = self._meters[(kind, method)] = _MethodMeters(self._service, kind, service, short)

        async def finish(
            context: aio.ServicerContext[Any, Any], started: float, exc: BaseException | None, caller: Caller
        ) -> None:
            code = _final_code(context, exc)
            meters.finished(code, self._callers.label(caller), time.monotonic() - started)
            tracing.end_server_span(code, caller.name)
            # Every call is counted and timed above; a line per ordinary call is DEBUG (at
            # thousands of calls a second, formatting and writing it was a tenth of a service's
            # CPU), unless tracing is on: then the line carries the trace id, and leads to it.
            if code not in _QUIET_CODES:
                level = logging.WARNING
            else:
                level = logging.INFO if tracing.enabled() else logging.DEBUG
            if log.isEnabledFor(level):
                log.log(
                    level,
                    "rpc %s finished: %s",
                    short,
                    code.name,
                    extra={"fields": {"elapsed_ms": round((time.monotonic() - started) * 1000, 1)}},
                )

        if inspect.isasyncgenfunction(behavior):

            async def streaming(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                caller = self._identify(metadata, context)
                with (
                    tracing.server_span(method, metadata),
                    log_context(request_id=request_id, caller=(caller or ANONYMOUS).name),
                ):
                    started, failure = meters.begin(), None
                    bound = set_caller(caller or ANONYMOUS)
                    try:
                        if caller is None:
                            await _refuse(method, context)
                        async for item in behavior(request, context):
                            yield item
                    except BaseException as exc:  # noqa: BLE001 - re-raised or converted below
                        failure = exc
                        await _convert(exc, context)
                    finally:
                        await finish(context, started, failure, caller or ANONYMOUS)
                        reset_caller(bound)

            return streaming

        async def unary(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            caller = self._identify(metadata, context)
            with (
                tracing.server_span(method, metadata),
                log_context(request_id=request_id, caller=(caller or ANONYMOUS).name),
            ):
                started, failure = meters.begin(), None
                bound = set_caller(caller or ANONYMOUS)
                try:
                    if caller is None:
                        await _refuse(method, context)
                    return await behavior(request, context)
                except BaseException as exc:  # noqa: BLE001 - re-raised or converted below
                    failure = exc
                    await _convert(exc, context)
                finally:
                    await finish(context, started, failure, caller or ANONYMOUS)
                    reset_caller(bound)

        return unary


_QUIET_CODES = {
    grpc.StatusCode.OK,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS,
}


class _MethodMeters:
    """One method's metric children, looked up once rather than by their labels on every call."""

    def __init__(self, own_service: str, kind: str, service: str, method: str) -> None:
        self._own_service = own_service
        self._labels = (kind, service, method)
        self._started = metrics.RPC_STARTED.labels(*self._labels)
        self._latency = metrics.RPC_LATENCY.labels(*self._labels)
        self._handled: dict[grpc.StatusCode, Any] = {}
        self._by_caller: dict[tuple[str, grpc.StatusCode], Any] = {}

    def begin(self) -> float:
        self._started.inc()
        return time.monotonic()

    def finished(self, code: grpc.StatusCode, caller: str, elapsed: float) -> None:
        handled = self._handled.get(code)
        if handled is None:
            handled = self._handled[code] = metrics.RPC_HANDLED.labels(*self._labels, code.name)
        handled.inc()
        by_caller = self._by_caller.get((caller, code))
        if by_caller is None:
            by_caller = metrics.RPC_CALLS_BY_CALLER.labels(self._own_service, caller, code.name)
            self._by_caller[(caller, code)] = by_caller
        by_caller.inc()
        self._latency.observe(elapsed)


# grpc-prometheus's grpc_type label, by (request streaming, response streaming).
_GRPC_TYPES = {
    (False, False): "unary",
    (True, False): "client_stream",
    (False, True): "server_stream",
    (True, True): "bidi_stream",
}


def _request_id(details: grpc.HandlerCallDetails) -> str:
    for key, value in details.invocation_metadata or ():  # type: ignore[attr-defined]
        if key == REQUEST_ID_KEY:
            return value.decode() if isinstance(value, bytes) else str(value)
    return uuid.uuid4().hex[:16]


async def _convert(exc: BaseException, context: aio.ServicerContext[Any, Any]) -> None:
    """Re-raise what gRPC must see as it is; turn the rest into a status."""
    if isinstance(exc, ServiceError):
        await context.abort_with_status(to_grpc_status(exc.to_status()))
    if isinstance(exc, Exception) and not isinstance(exc, aio.AbortError):
        log.exception("unexpected error while serving a call")
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
    raise exc


def _final_code(context: aio.ServicerContext[Any, Any], exc: BaseException | None) -> grpc.StatusCode:
    if isinstance(exc, ServiceError):
        return exc.code
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if exc is not None and not isinstance(exc, aio.AbortError):
        return (
            grpc.StatusCode.CANCELLED
            if isinstance(exc, BaseException) and not isinstance(exc, Exception)
            else grpc.StatusCode.INTERNAL
        )
    return grpc.StatusCode.OK


async def _refuse(method: str, context: aio.ServicerContext[Any, Any]) -> None:
    await context.abort(
        grpc.StatusCode.UNAUTHENTICATED, f"{method}: missing or invalid bearer token or client certificate"
    )


def _rewrap(handler: Handler, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Handler:
    """The same handler with its behavior replaced by ``wrap(behavior)``."""
    kinds = {
        (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
        (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
        (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
        (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
    }
    attr, factory = kinds[(handler.request_streaming, handler.response_streaming)]
    return factory(  # type: ignore[operator]
        wrap(getattr(handler, attr)),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
