"""What the durable-run benchmarks share: requests, mass submission, waiting and listing.

Every benchmark tags its runs with a label of its own and reads them back
with ListRuns, the same way an operator would, rather than keeping its own
bookkeeping of what the engine did.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

import httpx

from mediagen.v1 import gateway_pb2, generator_pb2, storage_pb2

if TYPE_CHECKING:
    from mediagen.v1.gateway_pb2_grpc import GatewayServiceAsyncStub as Stub

FINAL: tuple[gateway_pb2.RunState.ValueType, ...] = (
    gateway_pb2.RUN_STATE_SUCCEEDED,
    gateway_pb2.RUN_STATE_FAILED,
    gateway_pb2.RUN_STATE_CANCELLED,
)


def solid_output(size: int = 8, color: int | None = None) -> gateway_pb2.OutputSpec:
    """A small model-free image; a fresh colour per run, so ComfyUI's cache never answers."""
    workflow = generator_pb2.WorkflowSpec(template="solid_image")
    workflow.parameters["width"].int_value = size
    workflow.parameters["height"].int_value = size
    workflow.parameters["color"].int_value = random.randrange(1 << 24) if color is None else color
    return gateway_pb2.OutputSpec(workflow=workflow)


def new_label() -> str:
    return f"bench-{uuid.uuid4().hex[:10]}"


def submit_request(
    label: str, outputs: Iterable[gateway_pb2.OutputSpec], priority: int = gateway_pb2.RUN_PRIORITY_NORMAL
) -> gateway_pb2.SubmitRunRequest:
    return gateway_pb2.SubmitRunRequest(
        context=storage_pb2.RunContext(schema="bench", labels={"bench": label}),
        outputs=list(outputs),
        priority=priority,  # type: ignore[arg-type]
    )


async def submit_all(
    stub: Stub, requests: list[gateway_pb2.SubmitRunRequest], at_once: int = 64
) -> list[gateway_pb2.RunStatus]:
    """Every request submitted, ``at_once`` calls in flight, in the order given."""
    gate = asyncio.Semaphore(at_once)

    async def one(request: gateway_pb2.SubmitRunRequest) -> gateway_pb2.RunStatus:
        async with gate:
            return await stub.SubmitRun(request, timeout=60)

    return list(await asyncio.gather(*(one(request) for request in requests)))


async def list_labelled(
    stub: Stub, label: str, states: Iterable[gateway_pb2.RunState.ValueType] = ()
) -> list[gateway_pb2.RunStatus]:
    request = gateway_pb2.ListRunsRequest(labels={"bench": label}, states=list(states), page_size=500)
    runs: list[gateway_pb2.RunStatus] = []
    while True:
        page = await stub.ListRuns(request, timeout=60)
        runs.extend(page.runs)
        if not page.next_page_token:
            return runs
        request.page_token = page.next_page_token


async def wait_all_final(stub: Stub, label: str, count: int, within: float) -> list[gateway_pb2.RunStatus]:
    """Poll until ``count`` runs with the label are final; the runs as listed then."""
    deadline = time.monotonic() + within
    while True:
        final = await list_labelled(stub, label, FINAL)
        if len(final) >= count:
            return final
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(final)} of {count} runs finished within {within:.0f}s")
        await asyncio.sleep(1.0)


def seconds_of(stamp: object) -> float:
    """A protobuf Timestamp as float seconds since the epoch."""
    return float(stamp.seconds) + float(stamp.nanos) / 1e9  # type: ignore[attr-defined]


def busy_intervals(comfyui_url: str) -> list[tuple[float, float]]:
    """(start, end) of every prompt a ComfyUI executed, from its own history (ms timestamps)."""
    history = httpx.get(f"{comfyui_url}/history", params={"max_items": 100000}, timeout=30).json()
    intervals = []
    for entry in history.values():
        times = {event: data.get("timestamp") for event, data in entry["status"]["messages"]}
        start, end = times.get("execution_start"), times.get("execution_success")
        if start is not None and end is not None:
            intervals.append((start / 1000.0, end / 1000.0))
    return sorted(intervals)


def union_seconds(intervals: list[tuple[float, float]], low: float, high: float) -> float:
    """Time covered by the intervals, clipped to [low, high]."""
    covered, cursor = 0.0, low
    for start, end in sorted(intervals):
        start, end = max(start, cursor), min(end, high)
        if end > start:
            covered += end - start
            cursor = end
    return covered
