"""Tracing is off unless the standard OTEL_* variables turn it on, and off it does nothing."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from mediagen.scaffold import tracing


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_RESOURCE_ATTRIBUTES": "a=b"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_the_standard_variables_decide(environ: dict[str, str], on: bool) -> None:
    assert tracing.wanted(environ) is on


def test_off_nothing_is_installed_and_spans_cost_a_shared_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    if tracing.enabled():
        pytest.skip("another test of this process turned tracing on")
    assert tracing.configure("probe") is False
    with tracing.server_span("/mediagen.v1.GatewayService/Generate", ()) as span:
        assert span is trace.INVALID_SPAN
    first, second = tracing.span("a", {"k": 1}), tracing.span("b")
    assert first is second
    with first as span:
        assert not span.is_recording()
        assert tracing.current_trace_id() == ""
        assert not tracing.in_trace()
    carrier: dict[str, str] = {}
    tracing.inject(carrier)
    assert carrier == {}
    assert tracing.extract({"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}) is None


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "unsupported exporter"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            "only grpc",
        ),
    ],
)
def test_a_configuration_it_cannot_follow_stops_the_service(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], problem: str
) -> None:
    if tracing.enabled():
        pytest.skip("another test of this process turned tracing on")
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=problem):
        tracing.configure("probe")
    assert not tracing.enabled()
