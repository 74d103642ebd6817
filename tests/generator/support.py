"""Client-side helpers for generator tests: run a call, collect its events and media."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import duration_pb2
from prometheus_client import REGISTRY

from mediagen.params import to_value as param
from mediagen.scaffold.errors import StatusDetails, status_details, status_of_rpc_error
from mediagen.v1 import generator_pb2, generator_pb2_grpc


@dataclass
class Media:
    start: generator_pb2.MediaStart
    data: bytearray = field(default_factory=bytearray)
    end: generator_pb2.MediaEnd | None = None


@dataclass
class Result:
    events: list[generator_pb2.GenerateEvent] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    error: StatusDetails | None = None

    @property
    def accepted(self) -> generator_pb2.Accepted:
        return self.events[0].accepted

    @property
    def completed(self) -> generator_pb2.Completed | None:
        last = self.events[-1] if self.events else None
        return last.completed if last is not None and last.HasField("completed") else None

    def kinds(self) -> list[str]:
        return [str(e.WhichOneof("event")) for e in self.events]


def template_request(template: str, timeout: float = 0, **params: Any) -> generator_pb2.GenerateRequest:
    spec = generator_pb2.WorkflowSpec(template=template)
    for name, value in params.items():
        spec.parameters[name].CopyFrom(param(value))
    request = generator_pb2.GenerateRequest(request_id="test", workflow=spec)
    if timeout:
        request.timeout.CopyFrom(duration_pb2.Duration(seconds=int(timeout), nanos=int(timeout % 1 * 1e9)))
    return request


def raw_request(graph: dict[str, Any], timeout: float = 0) -> generator_pb2.GenerateRequest:
    import json

    request = generator_pb2.GenerateRequest(
        request_id="test", workflow=generator_pb2.WorkflowSpec(raw_graph_json=json.dumps(graph))
    )
    if timeout:
        request.timeout.CopyFrom(duration_pb2.Duration(seconds=int(timeout), nanos=int(timeout % 1 * 1e9)))
    return request


async def run(
    stub: generator_pb2_grpc.GeneratorServiceAsyncStub,
    request: generator_pb2.GenerateRequest,
    timeout: float | None = 60,  # noqa: ASYNC109 - the gRPC call's deadline
) -> Result:
    result = Result()
    try:
        async for event in stub.Generate(request, timeout=timeout):
            result.events.append(event)
            kind = event.WhichOneof("event")
            if kind == "media_start":
                result.media.append(Media(event.media_start))
            elif kind == "media_chunk":
                result.media[event.media_chunk.index].data += event.media_chunk.data
            elif kind == "media_end":
                result.media[event.media_end.index].end = event.media_end
            elif kind == "media_whole":
                whole = event.media_whole
                media = Media(whole.start)
                media.data += whole.data
                media.end = generator_pb2.MediaEnd(
                    index=whole.start.index, size_bytes=len(whole.data), sha256=whole.sha256
                )
                result.media.append(media)
    except grpc.RpcError as err:
        result.error = status_details(status_of_rpc_error(err))
    return result


def sha256(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


async def wait_until(predicate, within: float = 5.0, every: float = 0.02) -> float:
    """Poll ``predicate`` until true; returns the seconds it took, fails after ``within``."""
    import asyncio
    import time

    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > within:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(every)
    return time.monotonic() - started


async def events_until(call, stop) -> list[generator_pb2.GenerateEvent]:
    """Read a streaming call until ``stop(event)`` is true; the call stays open."""
    seen = []
    async for event in call:
        seen.append(event)
        if stop(event):
            return seen
    raise AssertionError(f"stream ended before the awaited event: {[e.WhichOneof('event') for e in seen]}")


def running_node(node_type: str):
    def stop(event: generator_pb2.GenerateEvent) -> bool:
        return event.HasField("progress") and event.progress.node_type == node_type

    return stop


def generator_refusals() -> float:
    """``Generate`` calls this process's generators answered RESOURCE_EXHAUSTED, so far."""
    labels = {
        "grpc_type": "server_stream",
        "grpc_service": "mediagen.v1.GeneratorService",
        "grpc_method": "Generate",
        "grpc_code": "RESOURCE_EXHAUSTED",
    }
    return REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0
