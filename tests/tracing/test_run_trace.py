"""One trace per run, read from what the service processes really export by OTLP.

Every part of the stack is its own process, configured only by the standard ``OTEL_*``
variables to export to an OTLP/gRPC receiver this test runs. The durable run is submitted to
an API-only gateway and executed by a worker-only gateway, so its trace has to cross the
JetStream queue in the message's headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from grpc import aio
from opentelemetry.proto.trace.v1 import trace_pb2

from bench.otlp_sink import Exported, SpanSink
from mediagen.stack.local import LocalStack
from mediagen.stack.minio import MinioEndpoint
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc
from tests.e2e.stack import running_stack
from tests.gateway.runs import output, request, run

pytestmark = pytest.mark.e2e


def _names(spans: list[Exported]) -> list[tuple[str, str]]:
    return sorted({(exported.service, exported.span.name) for exported in spans})


@pytest.fixture(scope="module")
def receiver() -> Iterator[SpanSink]:
    sink = SpanSink()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def traced_stack(
    tmp_path_factory: pytest.TempPathFactory, minio_endpoint: MinioEndpoint, receiver: SpanSink
) -> Iterator[LocalStack]:
    otel = receiver.env()
    with running_stack(
        tmp_path_factory.mktemp("traced"),
        minio_endpoint,
        gateway_env={**otel, "MEDIAGEN_GATEWAY_ROLE": "api"},
        worker_env={"OTEL_SERVICE_NAME": "mediagen-gateway-worker"},
        generator_env=otel,
        storage_env=otel,
        gateway_workers=1,
    ) as started:
        yield started


@pytest.fixture
async def gateway(traced_stack: LocalStack) -> Any:
    async with aio.insecure_channel(traced_stack.gateway_address) as channel:
        yield gateway_pb2_grpc.GatewayServiceStub(channel)


def _one(spans: list[Exported], service: str, name: str) -> Exported:
    found = [exported for exported in spans if (exported.service, exported.span.name) == (service, name)]
    assert len(found) == 1, f"{service} {name}: {len(found)} in {_names(spans)}"
    return found[0]


def pipeline(gateway: str) -> set[tuple[str, str]]:
    """The spans of one output, the gateway's named ``gateway``."""
    return {
        (gateway, "mediagen.output"),
        ("mediagen-generator", "/mediagen.v1.GeneratorService/Generate"),
        ("mediagen-generator", "comfyui.submit"),
        ("mediagen-generator", "comfyui.wait"),
        ("mediagen-generator", "comfyui.download"),
        ("mediagen-storage", "/mediagen.v1.StorageService/PutMedia"),
        ("mediagen-storage", "s3 put_object"),
    }


def _check_pipeline(spans: list[Exported], run_id: str, gateway: str) -> None:
    """Gateway, generator (ComfyUI HTTP and WebSocket wait) and storage (MinIO) in one trace."""
    by_id = {exported.span.span_id: exported for exported in spans}
    output_span = _one(spans, gateway, "mediagen.output")
    attrs = output_span.attributes
    assert attrs["mediagen.run_id"] == run_id
    assert attrs["mediagen.output_index"] == 0
    assert attrs["mediagen.backend"]
    assert attrs["mediagen.prompt_id"]
    assert attrs["mediagen.bytes"] > 0
    assert attrs["mediagen.output_state"] == "OUTPUT_STATE_SUCCEEDED"
    prompt_id = attrs["mediagen.prompt_id"]

    generate = _one(spans, "mediagen-generator", "/mediagen.v1.GeneratorService/Generate")
    assert generate.span.kind == trace_pb2.Span.SPAN_KIND_SERVER
    assert by_id[generate.span.parent_span_id] is output_span
    for stage in ("comfyui.submit", "comfyui.wait", "comfyui.download"):
        stage_span = _one(spans, "mediagen-generator", stage)
        assert stage_span.attributes["mediagen.prompt_id"] == prompt_id, stage
        assert stage_span.attributes["mediagen.backend"] == attrs["mediagen.backend"], stage
        assert stage_span.span.parent_span_id == generate.span.span_id, stage
    download = _one(spans, "mediagen-generator", "comfyui.download")
    assert download.attributes["mediagen.bytes"] == attrs["mediagen.bytes"]

    put = _one(spans, "mediagen-storage", "/mediagen.v1.StorageService/PutMedia")
    assert put.attributes["mediagen.run_id"] == run_id
    assert put.attributes["mediagen.bytes"] == attrs["mediagen.bytes"]
    assert by_id[put.span.parent_span_id] is output_span
    s3 = [e for e in spans if e.service == "mediagen-storage" and e.span.name.startswith("s3 ")]
    assert s3, _names(spans)
    assert any(e.attributes.get("s3.key", "").endswith(".png") for e in s3), [e.attributes for e in s3]
    written = [e for e in s3 if "mediagen.bytes" in e.attributes]
    assert sum(e.attributes["mediagen.bytes"] for e in written) >= attrs["mediagen.bytes"]
    for e in s3:
        assert by_id[e.span.parent_span_id].service == "mediagen-storage"


async def test_a_generate_call_is_one_trace_across_the_services(
    traced_stack: LocalStack, gateway: Any, receiver: SpanSink
) -> None:
    result = await run(gateway, request(output("solid_image", width=32, height=32, color=0x336699)))
    completed = result.completed
    assert completed.media_stored == 1
    assert len(completed.trace_id) == 32
    assert int(completed.trace_id, 16)
    spans = receiver.wait_for(
        completed.trace_id,
        {("mediagen-gateway", "/mediagen.v1.GatewayService/Generate"), *pipeline("mediagen-gateway")},
    )
    root = _one(spans, "mediagen-gateway", "/mediagen.v1.GatewayService/Generate")
    assert root.span.parent_span_id == b""
    assert {e.trace_id for e in spans} == {completed.trace_id}
    _check_pipeline(spans, completed.run_id, "mediagen-gateway")
    # A slow run's log lines lead to its trace, and back.
    for part in ("gateway", "generator", "storage"):
        logged = (traced_stack.log_dir / f"{part}.log").read_text()
        assert f"trace_id={completed.trace_id}" in logged, part


async def test_a_durable_run_continues_the_submitters_trace_across_the_queue(
    traced_stack: LocalStack, gateway: Any, receiver: SpanSink
) -> None:
    submitted = await gateway.SubmitRun(
        gateway_pb2.SubmitRunRequest(
            outputs=[output("solid_image", width=24, height=24, color=0x112233)],
            context=request().context,
        )
    )
    completed = None
    async for event in gateway.WatchRun(gateway_pb2.WatchRunRequest(run_id=submitted.run_id), timeout=60):
        if event.WhichOneof("event") == "run_completed":
            completed = event.run_completed
    assert completed is not None
    assert completed.state == gateway_pb2.RUN_STATE_SUCCEEDED
    spans = receiver.wait_for(
        completed.trace_id,
        {
            ("mediagen-gateway", "/mediagen.v1.GatewayService/SubmitRun"),
            ("mediagen-gateway-worker", "mediagen.run"),
            *pipeline("mediagen-gateway-worker"),
        },
    )
    submit = _one(spans, "mediagen-gateway", "/mediagen.v1.GatewayService/SubmitRun")
    assert submit.span.parent_span_id == b""
    executed = _one(spans, "mediagen-gateway-worker", "mediagen.run")
    assert executed.span.parent_span_id == submit.span.span_id
    assert executed.attributes["mediagen.run_id"] == submitted.run_id
    _check_pipeline(spans, submitted.run_id, "mediagen-gateway-worker")
    # Health checks (each gateway asks its peers every few seconds) and storage's upkeep of
    # MinIO belong to no run: never traced, so they never clutter the backend with root spans.
    assert not [e.name for e in receiver.spans if "grpc.health" in e.span.name or "reflection" in e.span.name]
    assert not [e.name for e in receiver.spans if e.span.name.startswith("s3 ") and not e.span.parent_span_id]
