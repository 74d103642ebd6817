"""The work queue: one JetStream work-queue stream per priority, a subject per caller in it.

A submitted run is one message (the SubmitRunRequest, run id filled in) on its caller's
subject of its priority's stream; it stays in the stream until the worker that finishes
the run acknowledges it. Priorities are strict: a worker takes from the highest priority
that has a message. Within a priority, callers take turns: the worker asks the callers
with messages waiting one after another, starting after the one it served last
(:class:`Turns`), and each caller's runs are first in, first out. So one caller's flood
of runs waits behind the others' next runs instead of in front of all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterable

import grpc
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js import errors as js_errors

from gateway.runs import states
from gateway.runs.jetstream import PRIORITIES, Layout, priority_name, priority_of
from gateway.runs.store import RunRecord, RunStore
from gateway.settings import GatewaySettings
from mediagen.scaffold import tracing
from mediagen.scaffold.errors import ServiceError

SNAPSHOT_SECONDS = 2.0
# JetStream's error code for a publish refused by a stream's max_msgs with discard=new.
MAX_MESSAGES_EXCEEDED = 10077


class RunQueue:
    def __init__(self, nc: Client, js: JetStreamContext, layout: Layout, settings: GatewaySettings) -> None:
        self._nc = nc
        self._js = js
        self._layout = layout
        self._settings = settings

    async def enqueue(self, run_id: str, priority: int, caller: str, payload: bytes) -> tuple[str, int, bool]:
        """Store the run in the queue; (stream, sequence, was it a duplicate). Raises ServiceError."""
        stream = self._layout.queue_stream(priority)
        try:
            ack = await self._js.publish(
                self._layout.queue_subject(priority, caller),
                payload,
                stream=stream,
                headers=_headers(run_id),
                timeout=5.0,
            )
        except js_errors.APIError as err:
            if err.err_code == MAX_MESSAGES_EXCEEDED:
                cap = self._settings.queue_cap
                raise ServiceError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"the {priority_name(priority).lower()} priority queue is full ({cap} runs)",
                    "RUN_QUEUE_FULL",
                    {"queue_cap": str(cap), "priority": priority_name(priority)},
                ) from None
            raise
        return stream, int(ack.seq), bool(ack.duplicate)

    async def remove(self, stream: str, seq: int) -> None:
        """Drop a cancelled run's message so it no longer takes a place in the queue."""
        # NOT_FOUND: a worker took it already, and will see that the run is cancelled.
        with contextlib.suppress(js_errors.NotFoundError):
            await self._js.delete_msg(stream, seq)

    async def waiting_callers(self, priority: int) -> list[str]:
        """Tokens of the callers with messages in ``priority``'s stream ("" for the shared subject).

        A message counts until it is acknowledged, so a caller whose runs are all executing
        is listed too; asking its consumer then answers "no messages" at once.
        """
        reply = await self._nc.request(
            f"$JS.API.STREAM.INFO.{self._layout.queue_stream(priority)}",
            json.dumps({"subjects_filter": ">"}).encode(),
            timeout=5.0,
        )
        info = json.loads(reply.data)
        if "error" in info:
            js_errors.APIError.from_error(info["error"])  # raises the error's own type
        subjects = info.get("state", {}).get("subjects") or {}
        tokens = (
            self._layout.token_of_subject(priority, subject) for subject, count in subjects.items() if count
        )
        return sorted(token for token in tokens if token is not None)


class Turns:
    """Round robin between the callers that have runs waiting in one priority.

    Each worker keeps its own turn; with several workers every caller with runs waiting
    still gets at least its share of each worker's takes.
    """

    def __init__(self) -> None:
        self._last: dict[int, str] = {}

    def order(self, priority: int, tokens: Iterable[str]) -> list[str]:
        """``tokens`` (sorted) in the order to ask them: starting after the caller served last."""
        ordered = sorted(tokens)
        last = self._last.get(priority)
        if last is None:
            return ordered
        after = [token for token in ordered if token > last]
        return after + [token for token in ordered if token <= last]

    def served(self, priority: int, token: str) -> None:
        self._last[priority] = token


class QueuedRuns:
    """The queued runs, for queue positions: a snapshot of the run records, read again at most
    every ``SNAPSHOT_SECONDS``, plus this gateway's own writes since.

    Reading every record for each position (one pass over the bucket) cost most of a second
    with a thousand runs retained, on every SubmitRun and every second of every waiting
    watch; a watch of the records that kept the index live slowed the workers' runs by a
    quarter (every record change decoded by every gateway). A snapshot is read only while
    positions are asked for. This gateway's submits and cancels are noted at once
    (:meth:`note`), so its next answer counts them; what other gateways and the workers did
    shows within ``SNAPSHOT_SECONDS`` (a run taken meanwhile may still be counted as ahead).
    """

    def __init__(self, store: RunStore) -> None:
        self._store = store
        self._queued: dict[str, RunRecord] = {}
        self._notes: dict[str, tuple[float, RunRecord]] = {}
        self._read_at = -SNAPSHOT_SECONDS
        self._reading = asyncio.Lock()

    def note(self, record: RunRecord) -> None:
        self._notes[record.run_id] = (time.monotonic(), record)
        self._apply(record)

    def _apply(self, record: RunRecord) -> None:
        if record.state == states.QUEUED:
            self._queued[record.run_id] = record
        else:
            self._queued.pop(record.run_id, None)

    async def position(self, record: RunRecord) -> int:
        if time.monotonic() - self._read_at >= SNAPSHOT_SECONDS:
            async with self._reading:
                if time.monotonic() - self._read_at >= SNAPSHOT_SECONDS:
                    started = time.monotonic()
                    records = await self._store.all()
                    self._queued = {r.run_id: r for r in records if r.state == states.QUEUED}
                    self._read_at = started
                    # What was noted while the snapshot was read may be missing from it.
                    self._notes = {key: note for key, note in self._notes.items() if note[0] >= started}
                    for _, noted in self._notes.values():
                        self._apply(noted)
        return queue_position(record, self._queued.values())


def queue_position(record: RunRecord, records: Iterable[RunRecord]) -> int:
    """Runs workers take before ``record``, a queued run, as far as the records tell.

    Every waiting run of a higher priority; in its own priority, the ``k`` waiting runs of
    its own caller submitted before it, and up to ``k`` of every other caller's (each other
    caller gets a turn for each of the ``k``; whether it also gets one just before this run
    depends on where each worker's turn stands, so it is not counted).
    """
    rank = _rank(record)
    higher, mine = 0, 0
    others: Counter[str] = Counter()
    for other in records:
        if other.state != states.QUEUED or other.run_id == record.run_id:
            continue
        other_rank = _rank(other)
        if other_rank < rank:
            higher += 1
        elif other_rank == rank:
            if other.status.caller != record.status.caller:
                others[other.status.caller] += 1
            elif (other.queue_seq, other.run_id) < (record.queue_seq, record.run_id):
                mine += 1
    return higher + mine + sum(min(count, mine) for count in others.values())


def _rank(record: RunRecord) -> int:
    """0 for the highest priority; a record's priority was made one of PRIORITIES at submit."""
    return PRIORITIES.index(priority_of(record.request.priority))


def _headers(run_id: str) -> dict[str, str]:
    """The message id, and the submitter's trace context so the worker's spans join its trace."""
    headers = {"Nats-Msg-Id": run_id}
    tracing.inject(headers)
    return headers
