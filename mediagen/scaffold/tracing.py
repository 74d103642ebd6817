"""Traces: one per run, across gateway, generator and storage, when the ``OTEL_*`` variables ask.

Tracing is off unless the standard OpenTelemetry variables turn it on:
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) sends spans by OTLP
over gRPC, ``OTEL_TRACES_EXPORTER`` picks exporters (``otlp``, ``console``, ``none``),
``OTEL_SDK_DISABLED=true`` turns it all off; ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER`` and the exporter's own variables are read
by the SDK as documented. Off, nothing is installed: no interceptor on servers or channels, and
:func:`span` hands back one shared do-nothing context manager, so a call pays one module-level
boolean test and nothing else.

On, the scaffold's interceptor opens a server span per call (:func:`server_span`), continuing
the W3C trace context the caller put in the call's metadata: the scaffold's channels put it
there with :func:`inject`, without a client span of their own (the callee's server span covers
the call; the gRPC instrumentation's client and server interceptors, a second interceptor layer
per call each, cost more than the spans themselves, see the README). :func:`inject` and
:func:`extract` carry the context anywhere else too (a durable run's queue message), so the
spans of one run share one trace id, which :func:`current_trace_id` gives to logs and
``RunCompleted``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, MutableMapping
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span as Span
from opentelemetry.util.types import AttributeValue

log = logging.getLogger("mediagen.tracing")

_enabled = False
_provider: Any = None
_tracer = trace.get_tracer("mediagen")
_OFF: contextlib.nullcontext[trace.Span] = contextlib.nullcontext(trace.INVALID_SPAN)
_ON_WORDS = {"otlp", "console"}


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces to be exported."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    # Any exporter named but "none" counts: one this module cannot run stops the service.
    return bool(_exporter_names(env) - {"none"})


def _exporter_names(env: Mapping[str, str]) -> set[str]:
    named = {word.strip().lower() for word in env.get("OTEL_TRACES_EXPORTER", "").split(",") if word.strip()}
    if named:
        return named
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return {"otlp"} if endpoint else set()


def configure(service: str) -> bool:
    """Install the SDK for this process when the environment asks for it; True when tracing is on.

    Idempotent: services that share a process (as in tests) share one provider, named
    after the first (``OTEL_SERVICE_NAME`` wins over it).
    """
    global _enabled, _provider
    if _enabled:
        return True
    if not wanted():
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    names = _exporter_names(os.environ)
    unknown = names - _ON_WORDS - {"none"}
    if unknown:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER: unsupported exporter(s) {sorted(unknown)}; use otlp or console"
        )
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    )
    if "otlp" in names and protocol != "grpc":
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: only grpc is supported")
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"mediagen-{service}"}
    provider = TracerProvider(resource=Resource.create(attributes))
    exporters: list[SpanExporter] = []
    if "otlp" in names:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporters.append(OTLPSpanExporter())
    if "console" in names:
        exporters.append(ConsoleSpanExporter())
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    _enabled = True
    log.info("tracing on: %s", ", ".join(sorted(names - {"none"})) or "no exporter")
    return True


def enabled() -> bool:
    return _enabled


def flush(timeout_seconds: float = 5.0) -> None:
    """Export the spans still buffered (a stopping service's last run)."""
    if _provider is not None:
        _provider.force_flush(int(timeout_seconds * 1000))


def shutdown() -> None:
    """Flush and stop the exporters; for the end of a service process."""
    global _enabled
    if _provider is not None:
        _provider.shutdown()
    _enabled = False


# Codes that mean the server failed (OpenTelemetry's RPC conventions); a caller's mistake,
# such as INVALID_ARGUMENT or NOT_FOUND, leaves a server span's status unset.
_SERVER_ERRORS = frozenset(
    code.value[0]
    for code in (
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    )
)


def server_span(method: str, metadata: Any) -> contextlib.AbstractContextManager[trace.Span]:
    """The server span of one call to ``method`` ("/package.Service/Method"), current while it runs.

    It continues the W3C context the caller put in the call's ``metadata`` and carries
    OpenTelemetry's RPC attributes (``rpc.system``, ``rpc.service``, ``rpc.method``, then
    ``rpc.grpc.status_code`` from :func:`end_server_span`). The scaffold's interceptor opens it
    around every call it already wraps; the gRPC instrumentation's interceptor did the same
    as a second layer per call and cost about 2 ms a run more (see the README).
    """
    if not _enabled:
        return _OFF
    carrier = {key: value for key, value in metadata or () if key in _CONTEXT_KEYS and isinstance(value, str)}
    service, _, short = method.lstrip("/").rpartition("/")
    return _tracer.start_as_current_span(
        method,
        context=propagate.extract(carrier) if carrier else None,
        kind=trace.SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": short},
        record_exception=False,
        set_status_on_exception=False,
    )


def end_server_span(code: grpc.StatusCode, caller: str) -> None:
    """Record the call's status code and caller on the current server span, when on."""
    if not _enabled:
        return
    current = trace.get_current_span()
    number = code.value[0]
    current.set_attributes({"rpc.grpc.status_code": number, "mediagen.caller": caller})
    if number in _SERVER_ERRORS:
        current.set_status(trace.Status(trace.StatusCode.ERROR, code.name))


_CONTEXT_KEYS = frozenset({"traceparent", "tracestate"})


def instrument_httpx(client: Any) -> None:
    """Give an httpx client the httpx instrumentation's spans and trace headers, when on."""
    if not _enabled:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client)


def span(
    name: str,
    attributes: Mapping[str, AttributeValue] | None = None,
    parent: otel_context.Context | None = None,
) -> contextlib.AbstractContextManager[trace.Span]:
    """A span around a block, current inside it; the shared do-nothing one when tracing is off.

    Use it in coroutines, not across the ``yield`` of an async generator a caller may abandon:
    the span's context must be left in the task that entered it.
    """
    if not _enabled:
        return _OFF
    return _tracer.start_as_current_span(name, context=parent, attributes=attributes)


def in_trace() -> bool:
    """Tracing is on and a span is current: work done now belongs to a call or a run.

    Background upkeep (health checks, sweeps) runs outside any, and is left untraced rather
    than making a root span every few seconds.
    """
    return _enabled and trace.get_current_span().get_span_context().is_valid


def annotate(attributes: Mapping[str, AttributeValue]) -> None:
    """Add attributes to the current span (a call's server span, say), when tracing is on."""
    if _enabled:
        trace.get_current_span().set_attributes(attributes)


def current_trace_id() -> str:
    """The current trace's id as 32 hex digits, or "" when tracing is off or no span is current."""
    if not _enabled:
        return ""
    found = trace.get_current_span().get_span_context()
    return trace.format_trace_id(found.trace_id) if found.is_valid else ""


def inject(carrier: MutableMapping[str, str]) -> None:
    """Write the current trace context (W3C ``traceparent``) into ``carrier``, when on."""
    if _enabled:
        propagate.inject(carrier)


def extract(carrier: Mapping[str, str] | None) -> otel_context.Context | None:
    """The trace context written by :func:`inject`, to continue the trace elsewhere."""
    if not _enabled or not carrier:
        return None
    return propagate.extract(carrier)
