"""Follow a durable run's events through WatchRun, across dropped connections.

Every logged event carries its sequence in the run's event log; the watcher
keeps the last one it has seen and, when the stream breaks (the gateway
replica went away, the network blinked), asks again for the events after it.
So a watcher never misses an event and never shows one twice, whichever
replica answers the next call. Only failures that a new call can cure are
retried (UNAVAILABLE and its kin), and only for a bounded time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc

from mediagen.v1 import gateway_pb2, gateway_pb2_grpc

RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.CANCELLED}
UNLOGGED = {"queue_position"}


class StreamEnded(RuntimeError):
    """The gateway kept ending the stream before the run completed."""


async def follow_run(
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub,
    run_id: str,
    on_event: Callable[[gateway_pb2.RunEvent], None],
    *,
    after: int = 0,
    reconnect_for: float = 120.0,
    on_reconnect: Callable[[str, int], None] | None = None,
) -> gateway_pb2.RunCompleted:
    """Deliver each event once, in order, until run_completed; returns it.

    ``on_reconnect(reason, last_sequence)`` is told each time the stream is
    opened again. Errors a new call cannot cure (NOT_FOUND, PERMISSION_DENIED,
    ...) and retryable ones that outlast ``reconnect_for`` propagate.
    """
    last, delay = after, 0.2
    broken_since: float | None = None
    while True:
        reason = ""
        try:
            async for event in stub.WatchRun(gateway_pb2.WatchRunRequest(run_id=run_id, after_sequence=last)):
                broken_since, delay = None, 0.2
                kind = event.WhichOneof("event")
                if kind not in UNLOGGED:
                    if event.sequence and event.sequence <= last:
                        continue  # already shown before the reconnect
                    last = max(last, event.sequence)
                on_event(event)
                if kind == "run_completed":
                    return event.run_completed
            reason = "the gateway ended the stream early"
        except grpc.RpcError as err:
            code = err.code()  # type: ignore[attr-defined]
            if code not in RETRYABLE:
                raise
            reason = f"{code.name}: {err.details()}"  # type: ignore[attr-defined]
            failure: BaseException = err
        else:
            failure = StreamEnded(f"run {run_id}: {reason}")
        now = time.monotonic()
        broken_since = broken_since or now
        if now - broken_since > reconnect_for:
            raise failure
        if on_reconnect is not None:
            on_reconnect(reason, last)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
