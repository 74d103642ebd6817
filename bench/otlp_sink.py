"""An OTLP/gRPC trace receiver that keeps what it is sent: where traced services export to.

The tracing tests read the spans the service processes really exported from it, and
``bench_e2e_overhead --tracing`` gives the traced stack a collector that answers at once, so
the cost measured is the services' own.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2


@dataclass(frozen=True)
class Exported:
    """One span as exported, with the ``service.name`` of the process that sent it."""

    service: str
    span: trace_pb2.Span

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def name(self) -> tuple[str, str]:
        return self.service, self.span.name

    @property
    def attributes(self) -> dict[str, Any]:
        return {item.key: _value(item.value) for item in self.span.attributes}


def _value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class SpanSink(trace_service_pb2_grpc.TraceServiceServicer):
    """Listens on 127.0.0.1 (any free port) until :meth:`stop`; thread-safe."""

    def __init__(self) -> None:
        self._spans: list[Exported] = []
        self._lock = threading.Lock()
        self._server = grpc.server(ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)  # type: ignore[no-untyped-call]
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, batch_delay_ms: int | None = 100) -> dict[str, str]:
        """The standard variables that make a service export here; batches sent every
        ``batch_delay_ms`` (None: the SDK's default, 5 s, as a deployment would have it)."""
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint, "OTEL_EXPORTER_OTLP_INSECURE": "true"}
        if batch_delay_ms is not None:
            env["OTEL_BSP_SCHEDULE_DELAY"] = str(batch_delay_ms)
        return env

    def stop(self) -> None:
        self._server.stop(0)

    def Export(self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any) -> Any:
        received: list[Exported] = []
        for resource_spans in request.resource_spans:
            attributes = resource_spans.resource.attributes
            names = [a.value.string_value for a in attributes if a.key == "service.name"]
            for scope_spans in resource_spans.scope_spans:
                received.extend(Exported(names[0] if names else "", span) for span in scope_spans.spans)
        with self._lock:
            self._spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()

    @property
    def spans(self) -> list[Exported]:
        with self._lock:
            return list(self._spans)

    def of_trace(self, trace_id: str) -> list[Exported]:
        return [exported for exported in self.spans if exported.trace_id == trace_id]

    def wait_for(self, trace_id: str, names: set[tuple[str, str]], timeout: float = 20.0) -> list[Exported]:
        """The trace's spans once every (service, span name) is among them (exports are batched)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.of_trace(trace_id)
            missing = names - {exported.name for exported in spans}
            if not missing:
                return spans
            if time.monotonic() > deadline:
                seen = sorted({exported.name for exported in spans})
                raise AssertionError(f"trace {trace_id}: no {sorted(missing)} among {seen}")
            time.sleep(0.1)
