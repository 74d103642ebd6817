"""The event log of durable runs: what watchers read, derived from what workers did.

Each run has a subject in one stream; an event is a serialized :class:`RunEvent` whose
``sequence`` is filled in from the stream sequence when it is read, so the cursor a
watcher resumes from is JetStream's own. Events are written after the record they
follow (see :mod:`gateway.runs.store`): a crash in between leaves the record ahead of
the log, and the next worker to see the run brings the log level
(:meth:`EventLog.ensure_completed`), never the other way round.

A worker writes through an :class:`Outbox`: the run's pipeline never waits for NATS.
Events are published in order by one task that retries while NATS is unreachable.
Progress is thinned: per output at most one report every ``PROGRESS_INTERVAL`` (plus every
change of stage) is logged, and an unsent report is replaced by a newer one; every other
event is kept. So the log of a run grows with its outputs and media, not with its steps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from google.protobuf import timestamp_pb2
from nats.js import JetStreamContext
from nats.js import errors as js_errors

from gateway.runs.jetstream import Layout
from mediagen.tasks import cancel_and_wait
from mediagen.v1 import gateway_pb2

log = logging.getLogger("mediagen.gateway.runs")
RETRY_SECONDS = 0.5
PROGRESS_INTERVAL = 0.25


def stamped(run_id: str, **fields: object) -> gateway_pb2.RunEvent:
    event = gateway_pb2.RunEvent(run_id=run_id, **fields)  # type: ignore[arg-type]
    event.time.GetCurrentTime()
    return event


def from_gateway_event(run_id: str, event: gateway_pb2.GatewayEvent) -> gateway_pb2.RunEvent:
    """The pipeline's GatewayEvent as a logged event (the oneof members share their names)."""
    kind = event.WhichOneof("event")
    out = stamped(run_id)
    if kind is not None and kind != "run_created":
        getattr(out, kind).CopyFrom(getattr(event, kind))
    return out


class EventLog:
    def __init__(self, js: JetStreamContext, layout: Layout) -> None:
        self._js = js
        self._layout = layout

    async def publish(self, event: gateway_pb2.RunEvent) -> int:
        ack = await self._js.publish(
            self._layout.events_subject(event.run_id),
            event.SerializeToString(),
            stream=self._layout.events_stream,
            timeout=5.0,
        )
        return int(ack.seq)

    async def last(self, run_id: str) -> gateway_pb2.RunEvent | None:
        try:
            raw = await self._js.get_last_msg(self._layout.events_stream, self._layout.events_subject(run_id))
        except js_errors.NotFoundError:
            return None
        event = gateway_pb2.RunEvent.FromString(raw.data or b"")
        event.sequence = raw.seq or 0
        return event

    async def ensure_completed(self, completed: gateway_pb2.RunCompleted) -> None:
        """Publish run_completed unless it is already the run's last event."""
        last = await self.last(completed.run_id)
        if last is None or last.WhichOneof("event") != "run_completed":
            await self.publish(stamped(completed.run_id, run_completed=completed))


class Outbox:
    """A worker's ordered, retrying, coalescing queue of one run's events."""

    def __init__(self, log_: EventLog, run_id: str) -> None:
        self._log = log_
        self._run_id = run_id
        self._pending: deque[gateway_pb2.RunEvent] = deque()
        self._progress_logged: dict[int, tuple[float, int]] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task = asyncio.create_task(self._drain(), name=f"outbox-{run_id}")

    def put(self, event: gateway_pb2.RunEvent) -> None:
        if event.WhichOneof("event") == "output_progress":
            index = event.output_progress.output_index
            stage = event.output_progress.progress.stage
            now = time.monotonic()
            last_at, last_stage = self._progress_logged.get(index, (-PROGRESS_INTERVAL, -1))
            if stage == last_stage and now - last_at < PROGRESS_INTERVAL:
                return  # the log keeps a few reports a second per output, and every change of stage
            self._progress_logged[index] = (now, stage)
            # The head may be in flight already; only events behind it are replaced.
            for queued in list(self._pending)[1:]:
                same = queued.WhichOneof("event") == "output_progress"
                if same and queued.output_progress.output_index == index:
                    queued.CopyFrom(event)
                    return
        self._pending.append(event)
        self._idle.clear()
        self._wake.set()

    async def emit(self, event: gateway_pb2.GatewayEvent) -> None:
        """The pipeline's emit callback: never waits for NATS."""
        self.put(from_gateway_event(self._run_id, event))

    async def flush(self) -> None:
        """Wait until every event put so far is in the log (however long NATS is away)."""
        await self._idle.wait()

    async def close(self) -> None:
        await cancel_and_wait([self._task])

    async def _drain(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                try:
                    await self._log.publish(self._pending[0])
                except Exception as err:  # noqa: BLE001 - NATS away: keep the event, try again
                    log.warning("run %s: event not logged yet (%s), retrying", self._run_id, err)
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                self._pending.popleft()
            self._idle.set()


def timestamp_now() -> timestamp_pb2.Timestamp:
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    return now
