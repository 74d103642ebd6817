"""Building SubmitRun requests and reading WatchRun streams, for the durable-run tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

import grpc

from gateway.run_ids import RunIds
from mediagen.scaffold.callers import ANONYMOUS
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc, storage_pb2


def stored_id(run_id: str) -> str:
    """The id storage holds a run under that a caller (here the tests' anonymous one) chose."""
    return RunIds(ANONYMOUS).stored(run_id)


def submit_request(
    *outputs: gateway_pb2.OutputSpec,
    run_id: str = "",
    priority: int = gateway_pb2.RUN_PRIORITY_NORMAL,
    concurrency: int = 0,
    labels: Mapping[str, str] | None = None,
) -> gateway_pb2.SubmitRunRequest:
    return gateway_pb2.SubmitRunRequest(
        run_id=run_id,
        outputs=outputs,
        concurrency=concurrency,
        priority=priority,  # type: ignore[arg-type]
        context=storage_pb2.RunContext(schema="test", execution_mode="batch", labels=dict(labels or {})),
    )


async def watch(
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub, run_id: str, after: int = 0, logged_only: bool = True
) -> list[gateway_pb2.RunEvent]:
    """Every event until run_completed (queue positions left out unless asked for)."""
    events = []
    async for event in stub.WatchRun(gateway_pb2.WatchRunRequest(run_id=run_id, after_sequence=after)):
        if logged_only and event.WhichOneof("event") == "queue_position":
            continue
        events.append(event)
    return events


def kinds(events: list[gateway_pb2.RunEvent]) -> list[str]:
    return [str(event.WhichOneof("event")) for event in events]


async def eventually(check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def state_of(stub: gateway_pb2_grpc.GatewayServiceAsyncStub, run_id: str) -> int:
    reply = await stub.GetRun(storage_pb2.GetRunRequest(run_id=run_id))
    return int(reply.status.state)


async def wait_state(
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub, run_id: str, state: int, within: float = 30.0
) -> gateway_pb2.GatewayGetRunResponse:
    deadline = time.monotonic() + within
    while True:
        try:
            reply = await stub.GetRun(storage_pb2.GetRunRequest(run_id=run_id))
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE:  # NATS coming back
                raise
            reply = gateway_pb2.GatewayGetRunResponse()
        if reply.status.state == state:
            return reply
        assert time.monotonic() < deadline, f"run {run_id} still {reply.status.state}, wanted {state}"
        await asyncio.sleep(0.1)
