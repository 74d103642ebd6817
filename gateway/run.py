"""A whole run: its outputs, one after another or several at once, as events.

The run is being recorded in storage while the outputs start: its
``run_created`` is always the first event, and no media goes to storage
before it (see :mod:`gateway.transfer`); if recording fails, the outputs are
cancelled and the caller gets storage's error.

Each output runs in its own task under a semaphore sized by the request's
concurrency; their events meet in one bounded queue that the caller's stream
drains, so a caller that reads slowly slows the run instead of growing memory.
Each task's result is its output's outcome, and :class:`OutputsEnded` after the
last output's events tells the stream that ``run_completed`` comes next.
When the caller goes away the task group is cancelled, which cancels every
generator call (freeing ComfyUI) and every storage upload (leaving nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from google.protobuf import duration_pb2

from gateway.output import OutputEnded, OutputRunner
from gateway.peers import Peers
from gateway.settings import GatewaySettings
from mediagen.scaffold import tracing
from mediagen.tasks import cancel_and_wait
from mediagen.v1 import common_pb2, gateway_pb2, storage_pb2

State = gateway_pb2.OutputState


@dataclass(frozen=True, slots=True)
class OutputsEnded:
    """Queued after the last event of every output: ``run_completed`` comes next."""


_OUTPUTS_ENDED = OutputsEnded()


async def run_outputs(
    *,
    peers: Peers,
    settings: GatewaySettings,
    run_id: str,
    request: gateway_pb2.GatewayGenerateRequest,
    remaining: Callable[[], float | None],
    created: asyncio.Future[storage_pb2.Run],
) -> AsyncIterator[gateway_pb2.GatewayEvent]:
    """Yield ``run_created``, every event of the run's outputs, then ``run_completed``."""
    started = time.monotonic()
    events: asyncio.Queue[gateway_pb2.GatewayEvent | OutputsEnded] = asyncio.Queue(64)
    runner = OutputRunner(peers=peers, settings=settings, run_id=run_id, remaining=remaining, created=created)
    slots = asyncio.Semaphore(min(max(request.concurrency, 1), settings.max_concurrency))

    async def one(index: int, spec: gateway_pb2.OutputSpec) -> gateway_pb2.OutputOutcome:
        async with slots, contextlib.aclosing(runner.run(index, spec)) as items:
            async for item in items:
                if isinstance(item, OutputEnded):
                    return item.outcome
                await events.put(item)
        raise AssertionError("an output always ends with its outcome")

    async def every() -> list[gateway_pb2.OutputOutcome]:
        # Cancelled only once the caller's stream has stopped reading: no end marker then.
        cancelled = False
        try:
            async with asyncio.TaskGroup() as group:
                outputs = [group.create_task(one(index, spec)) for index, spec in enumerate(request.outputs)]
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            if not cancelled:
                await events.put(_OUTPUTS_ENDED)
        return [output.result() for output in outputs]

    driver = asyncio.create_task(every(), name=f"run-{run_id}")
    try:
        run = await asyncio.shield(created)
        yield gateway_pb2.GatewayEvent(run_created=gateway_pb2.RunCreated(run=run))
        while not isinstance(event := await events.get(), OutputsEnded):
            yield event
        outcomes = await driver
    finally:
        created.cancel()
        await cancel_and_wait([driver])
    yield gateway_pb2.GatewayEvent(run_completed=summary(run_id, outcomes, time.monotonic() - started))


def summary(run_id: str, outcomes: list[gateway_pb2.OutputOutcome], wall: float) -> gateway_pb2.RunCompleted:
    ordered = sorted(outcomes, key=lambda outcome: outcome.output_index)
    timings = common_pb2.Timings(total=_duration(wall))
    for outcome in ordered:
        for name in ("queue_wait", "execution", "transfer"):
            total = getattr(timings, name)
            total.FromNanoseconds(total.ToNanoseconds() + getattr(outcome.timings, name).ToNanoseconds())
    return gateway_pb2.RunCompleted(
        run_id=run_id,
        outputs=ordered,
        timings=timings,
        media_stored=sum(len(outcome.media_ids) for outcome in ordered),
        outputs_failed=sum(outcome.state != State.OUTPUT_STATE_SUCCEEDED for outcome in ordered),
        trace_id=tracing.current_trace_id(),
    )


def _duration(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(value * 1e9))
    return duration
