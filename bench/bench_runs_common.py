"""What the durable-run benchmarks share: requests, mass submission, waiting and listing.

Every benchmark tags its runs with a label of its own and reads them back
with ListRuns, the same way an operator would, rather than keeping its own
bookkeeping of what the engine did.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

import websockets

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


class QueueWatch:
    """A backend's busy intervals, from the ``status`` broadcasts of its ComfyUI WebSocket.

    ComfyUI announces ``queue_remaining`` (running plus pending prompts) to
    every socket whenever it changes; the backend is busy while it is above
    zero. (The generator deletes each prompt's history once it is done with
    it, so /history cannot tell afterwards.)
    """

    def __init__(self, comfyui_url: str) -> None:
        self.url = comfyui_url.replace("http://", "ws://", 1) + f"/ws?clientId=bench-{uuid.uuid4().hex[:8]}"
        self.intervals: list[tuple[float, float]] = []
        self._since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._connected.wait(), 10)

    async def _listen(self) -> None:
        async with websockets.connect(self.url, max_size=None) as socket:
            self._connected.set()
            async for message in socket:
                if not isinstance(message, str):
                    continue
                data = json.loads(message)
                if data.get("type") != "status":
                    continue
                remaining = data["data"]["status"]["exec_info"]["queue_remaining"]
                now = time.time()
                if remaining and self._since is None:
                    self._since = now
                elif not remaining and self._since is not None:
                    self.intervals.append((self._since, now))
                    self._since = None

    async def stop(self) -> list[tuple[float, float]]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._since is not None:
            self.intervals.append((self._since, time.time()))
        return self.intervals


def union_seconds(intervals: list[tuple[float, float]], low: float, high: float) -> float:
    """Time covered by the intervals, clipped to [low, high]."""
    covered, cursor = 0.0, low
    for start, end in sorted(intervals):
        start, end = max(start, cursor), min(end, high)
        if end > start:
            covered += end - start
            cursor = end
    return covered
