"""The worker: takes runs from the queue when it has room and executes them, crash-safe.

A run is taken by fetching its queue message, highest priority first and callers taking
turns within a priority (:mod:`gateway.runs.queue`), only while fewer than ``worker_runs``
runs are executing here. The message's delivery count is the claim:
it is written into the run record (compare-and-set) before anything else happens, and
every later write of this worker is made only while the record still names that
delivery. The worker renews the claim with ``in_progress`` heartbeats; when a worker
dies, JetStream redelivers the message after ``claim_seconds`` to another worker, whose
higher delivery count takes the run over, and a worker that only lost touch finds out at
its next write and stops.

The order of writes, and the one right continuation after a crash at each point:

1. record RUNNING with the claim -> a new worker resumes (RUNNING, stale claim);
2. each output's events logged, then its outcome recorded once its media are stored ->
   outputs with an outcome are never generated again; one without is generated again,
   and its items an earlier attempt already stored are kept as they are (listed from
   storage on resume; the new bytes of those items are dropped), so nothing is stored
   twice even when a repeat gives other bytes; storage's idempotency keys
   ``<run>.<output>.<item>`` are the last line of defence;
3. the final state recorded -> a new worker sees a final record, and only makes sure the
   log ends with ``run_completed`` and acknowledges the message;
4. ``run_completed`` logged, then the message acknowledged: the run is done.

A generator with no room (RESOURCE_EXHAUSTED, after ``run_start_wait`` of asking again) sends the
run back to wait: recorded QUEUED, then the message is nak'ed with ``requeue_delay``. A run
whose workers died ``max_worker_deaths`` times is recorded FAILED (``error`` says so) rather
than taken again: a run that kills its worker must not take down the fleet. A worker that
is shut down (SIGTERM) hands its runs back the same way, so another takes them at once.

A worker's own writes to NATS are retried while NATS is away: the run goes on storing
media, and its state and events reach NATS once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.rpc import status_pb2  # type: ignore[import-untyped]
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from gateway.errors import peer_error
from gateway.output import OutputEnded, OutputRunner
from gateway.peers import Peers
from gateway.runs import states
from gateway.runs.events import EventLog, Outbox, stamped, timestamp_now
from gateway.runs.jetstream import PRIORITIES, Layout, ensure_consumer
from gateway.runs.queue import RunQueue, Turns
from gateway.runs.store import LostClaim, RunRecord, RunStore, completed_of
from gateway.settings import GatewaySettings
from mediagen.scaffold import tracing
from mediagen.scaffold.logging import log_context
from mediagen.scaffold.metrics import STAGE_DURATION
from mediagen.v1 import gateway_pb2, storage_pb2

log = logging.getLogger("mediagen.gateway.runs.worker")
T = TypeVar("T")
IDLE_SECONDS = 0.25
"""How long an idle worker first waits before looking again without being woken: runs that come
back to a queue without a publish (a dead worker's unacknowledged run, another worker's
requeue, a publish missed while disconnected) are found within it, or within the longer wait
it grows to (:data:`IDLE_MAX_SECONDS`) while nothing comes."""
IDLE_MAX_SECONDS = 2.0
"""The longest wait of a worker that keeps finding nothing: a gateway whose runs all come by
publish (or that serves no durable runs at all) no longer asks every queue four times a
second. A run this worker requeues itself is looked for when its redelivery is due."""
NEXT_NO_WAIT = json.dumps({"batch": 1, "no_wait": True}).encode()
NO_RESPONDERS = "503"
RETRY_SECONDS = 0.5
HAND_BACK_SECONDS = 2.0
OutputState = gateway_pb2.OutputState
NO_ROOM = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


@dataclass
class _Claim:
    """The queue message this worker holds a run by; NATS may hand it a newer delivery of it."""

    msg: Msg
    delivery: int
    adopting: int = 0

    def holds(self, delivery: int) -> bool:
        return delivery in (self.delivery, self.adopting)


@dataclass
class _Running:
    """A run executing here, and why it might stop early."""

    claim: _Claim
    task: asyncio.Task[Any] | None = None
    cancel_requested: bool = False
    claim_lost: bool = False

    def stop(self, *, cancel: bool = False, lost: bool = False) -> None:
        self.cancel_requested |= cancel
        self.claim_lost |= lost
        if self.task is not None:
            self.task.cancel()


@dataclass
class _Progress:
    outcomes: list[gateway_pb2.OutputOutcome] = field(default_factory=list)
    no_room: list[gateway_pb2.OutputOutcome] = field(default_factory=list)


def new_record(request: gateway_pb2.SubmitRunRequest, created: Any, stream: str, seq: int) -> RunRecord:
    status = gateway_pb2.RunStatus(
        run_id=request.run_id,
        state=states.QUEUED,
        priority=request.priority,
        context=request.context,
        output_count=len(request.outputs),
        caller=request.caller,
    )
    status.created_at.CopyFrom(created)
    return RunRecord(request=request, status=status, queue_stream=stream, queue_seq=seq)


class Worker:
    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        layout: Layout,
        store: RunStore,
        events: EventLog,
        peers: Peers,
        settings: GatewaySettings,
    ) -> None:
        self._nc = nc
        self._js = js
        self._layout = layout
        self._store = store
        self._events = events
        self._peers = peers
        self._settings = settings
        self.name = f"worker-{uuid.uuid4().hex[:8]}"
        self._running: dict[str, _Running] = {}
        self._slots = asyncio.Semaphore(settings.worker_runs)
        self._tasks: set[asyncio.Task[None]] = set()
        self._published = asyncio.Event()
        self._queue = RunQueue(nc, js, layout, settings)
        self._turns = Turns()
        self._consumers: set[tuple[int, str]] = set()
        # Callers (tokens) with runs waiting, per priority, and when the streams were last read.
        self._waiting: dict[int, set[str]] = {priority: set() for priority in PRIORITIES}
        self._looked = 0.0
        self._idle_wait = IDLE_SECONDS
        self._redelivery_due: float | None = None
        """When a run this worker put back with a delay comes back (monotonic), if one will."""

    async def serve(self) -> None:
        """Take and execute runs until cancelled."""
        inbox = self._nc.new_inbox()
        replies = await self._nc.subscribe(inbox)
        cancels = await self._nc.subscribe(self._layout.cancel_subject, cb=self._on_cancel)
        # Every submit is a publish on a queue subject: seen here too, it wakes an idle worker.
        published = await self._nc.subscribe(f"{self._layout.subject_root}.queue.>", cb=self._on_published)
        try:
            while True:
                await self._slots.acquire()
                msg = await self._next(inbox, replies)
                task = asyncio.create_task(self._take(msg))
                self._tasks.add(task)
                task.add_done_callback(self._done)
        finally:
            for subscription in (published, cancels, replies):
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("run handling failed", exc_info=task.exception())

    async def _next(self, inbox: str, replies: Subscription) -> Msg:
        """The next queued run: highest priority first, callers taking turns within one.

        In each priority, from the highest down, the callers with messages are asked in turn
        (:class:`gateway.runs.queue.Turns`), one message each with ``no_wait``: an empty
        consumer answers at once (404), so looking past it costs a round trip, not a wait.
        When no caller has a run waiting the worker waits for a submit's publish, or
        ``IDLE_SECONDS`` growing to ``IDLE_MAX_SECONDS``: asking every queue many times a second
        for nothing was most of an idle gateway's CPU, and a share of every run's.
        """
        while True:
            self._published.clear()  # a publish during the look below makes the wait return at once
            try:
                msg = await self._take_turn(inbox, replies)
            except Exception as err:  # noqa: BLE001 - NATS away: wait for it
                log.warning("cannot fetch runs (%s); retrying", err)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if msg is not None:
                self._idle_wait = IDLE_SECONDS
                return msg
            await self._wait_idle()

    async def _wait_idle(self) -> None:
        """Until a publish, a redelivery this worker expects, or the idle wait, which doubles
        (up to ``IDLE_MAX_SECONDS``) each time it passes with nothing new."""
        wait = self._idle_wait
        if self._redelivery_due is not None:
            wait = min(wait, max(self._redelivery_due - time.monotonic(), 0.0))
        try:
            await asyncio.wait_for(self._published.wait(), wait)
            self._idle_wait = IDLE_SECONDS
        except TimeoutError:
            self._idle_wait = min(self._idle_wait * 2, IDLE_MAX_SECONDS)
        if self._redelivery_due is not None and time.monotonic() >= self._redelivery_due:
            self._redelivery_due = None
            self._looked = 0.0  # read the streams: the redelivered run is found without a publish

    async def _take_turn(self, inbox: str, replies: Subscription) -> Msg | None:
        """One round over the priorities, highest first, and the callers with runs waiting in each.

        Which callers have runs waiting is known from each submit's publish at once
        (:meth:`_on_published`), and read from the streams at most every ``IDLE_SECONDS``
        (which finds the runs that come back without a publish); a caller whose consumer has
        nothing to deliver is dropped until one of these says otherwise. Reading the streams
        on every take cost a round trip per priority, about 12 ms a take under load.
        """
        if time.monotonic() - self._looked >= IDLE_SECONDS:
            for priority in PRIORITIES:
                self._waiting[priority] = set(await self._queue.waiting_callers(priority))
            self._looked = time.monotonic()
        for priority in PRIORITIES:
            for token in self._turns.order(priority, self._waiting[priority]):
                msg = await self._ask(priority, token, inbox, replies)
                if msg is not None:
                    self._turns.served(priority, token)
                    return msg
                self._waiting[priority].discard(token)
        return None

    async def _ask(self, priority: int, token: str, inbox: str, replies: Subscription) -> Msg | None:
        """One message of a caller's consumer (``token``; "" for the shared subject), or None."""
        while replies.pending_msgs:  # a late answer to an earlier ask: a run this worker holds now
            msg = await replies.next_msg(timeout=1.0)
            if msg.reply and not (msg.headers or {}).get("Status"):
                return msg
        subject = (
            f"$JS.API.CONSUMER.MSG.NEXT.{self._layout.queue_stream(priority)}"
            f".{self._layout.queue_consumer(priority, token)}"
        )
        for _attempt in range(2):
            if (priority, token) not in self._consumers:
                # The first worker to see a caller's subject makes its consumer (idempotent).
                await ensure_consumer(self._js, self._layout, self._settings, priority, token)
                self._consumers.add((priority, token))
            await self._nc.publish(subject, NEXT_NO_WAIT, reply=inbox)
            msg = await replies.next_msg(timeout=5.0)
            status = (msg.headers or {}).get("Status")
            if msg.reply and not status:
                return msg
            if status != NO_RESPONDERS:
                return None  # 404 No Messages
            # The consumer is gone (unused for caller_queue_idle_seconds, or deleted by hand):
            # make it again and ask it at once, so a caller back after a long pause waits no longer.
            self._consumers.discard((priority, token))
        return None

    async def _on_published(self, msg: Msg) -> None:
        for priority in PRIORITIES:
            token = self._layout.token_of_subject(priority, msg.subject)
            if token is not None:
                self._waiting[priority].add(token)
        self._published.set()

    async def _on_cancel(self, msg: Msg) -> None:
        running = self._running.get(msg.data.decode(errors="replace"))
        if running is not None:
            running.stop(cancel=True)

    async def _take(self, msg: Msg) -> None:
        request = gateway_pb2.SubmitRunRequest.FromString(msg.data)
        # The message carries the submitter's trace context: this run's spans continue its trace.
        parent = tracing.extract(msg.headers)
        attributes: dict[str, str | int] = {
            "mediagen.run_id": request.run_id,
            "mediagen.delivery": int(msg.metadata.num_delivered or 1),
        }
        with log_context(run_id=request.run_id), tracing.span("mediagen.run", attributes, parent):
            try:
                await self._take_run(msg, request)
            except LostClaim as lost:
                log.warning("run %s moved on without this worker: %s", request.run_id, lost)

    async def _take_run(self, msg: Msg, request: gateway_pb2.SubmitRunRequest) -> None:
        run_id = request.run_id
        meta = msg.metadata
        delivery = int(meta.num_delivered or 1)
        record = await self._store.get(run_id)
        if record is None:
            # SubmitRun stored the message but died before the record: the message is the run.
            created = timestamp_now()
            if meta.timestamp is not None:
                created.FromDatetime(meta.timestamp)
            await self._store.create(new_record(request, created, meta.stream or "", meta.sequence.stream))
            record = await self._store.get(run_id)
            assert record is not None
        if record.state in states.FINAL:
            await self._events.ensure_completed(completed_of(record))
            await msg.ack_sync()
            return
        mine = self._running.get(run_id)
        if mine is not None and delivery > mine.claim.delivery:
            await self._adopt(mine.claim, msg, delivery, run_id)
            return
        if delivery <= record.delivery:
            return  # a stale copy of a message another worker holds: leave it to that worker
        resumed = record.state == states.RUNNING
        deaths = delivery - 1 - record.requeues - record.adoptions

        def claim(current: RunRecord) -> bool:
            if current.state in states.FINAL or current.delivery >= delivery:
                raise LostClaim("taken or finished meanwhile")
            current.delivery = delivery
            current.move(states.RUNNING)
            current.status.attempts += 1
            current.status.queue_position = 0
            if not current.status.HasField("started_at"):
                current.status.started_at.GetCurrentTime()
            return True

        record = await self._store.change(run_id, claim)
        if record.status.attempts == 1:
            waited = record.status.started_at.ToNanoseconds() - record.status.created_at.ToNanoseconds()
            STAGE_DURATION.labels("gateway", "queued").observe(max(waited / 1e9, 0.0))
        outbox = Outbox(self._events, run_id)
        try:
            if record.status.cancel_requested:
                await self._finish(_Claim(msg, delivery), record, outbox, states.CANCELLED)
                return
            if deaths >= self._settings.max_worker_deaths:
                error = status_pb2.Status(
                    code=grpc.StatusCode.ABORTED.value[0],
                    message=f"run given up: its worker died {deaths} times",
                )
                await self._finish(_Claim(msg, delivery), record, outbox, states.FAILED, error)
                return
            reason = None
            if resumed:
                reason = status_pb2.Status(
                    code=grpc.StatusCode.UNAVAILABLE.value[0],
                    message=f"resumed after the previous worker stopped (attempt {record.status.attempts})",
                )
            outbox.put(
                stamped(
                    run_id,
                    state_changed=gateway_pb2.RunStateChanged(
                        state=states.RUNNING, attempt=record.status.attempts, reason=reason
                    ),
                )
            )
            await self._execute(msg, record, delivery, outbox)
        finally:
            await outbox.close()

    async def _adopt(self, claim: _Claim, msg: Msg, delivery: int, run_id: str) -> None:
        """NATS redelivered a run this worker is still executing (its heartbeats were lost while
        NATS was away): go on under the new delivery rather than resume it a second time."""
        claim.adopting = delivery

        def adopt(current: RunRecord) -> bool:
            current.delivery = delivery
            current.adoptions += 1
            return True

        try:
            await self._store.change(run_id, adopt, holder=claim)
            claim.msg, claim.delivery = msg, delivery
            log.info("run %s: kept running under redelivery %d", run_id, delivery)
        finally:
            claim.adopting = 0

    async def _execute(self, msg: Msg, record: RunRecord, delivery: int, outbox: Outbox) -> None:
        run_id = record.run_id
        claim = _Claim(msg, delivery)
        running = _Running(claim)
        self._running[run_id] = running
        progress = _Progress()
        running.task = asyncio.create_task(self._outputs(record, claim, outbox, progress, running))
        heartbeat = asyncio.create_task(self._heartbeat(run_id, running))
        try:
            await running.task
        except asyncio.CancelledError:
            if not (running.cancel_requested or running.claim_lost):
                # This worker is shutting down: hand the run back for another worker at once.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._hand_back(claim, record, outbox), HAND_BACK_SECONDS)
                raise
        finally:
            heartbeat.cancel()
            if self._running.get(run_id) is running:
                del self._running[run_id]
        if running.claim_lost:
            raise LostClaim("claim lapsed while running")
        if running.cancel_requested:
            await self._finish(claim, record, outbox, states.CANCELLED)
        elif progress.no_room:
            await self._requeue(claim, record, outbox, progress.no_room[0].error)
        else:
            current = await self._retry(lambda: self._store.get(run_id))
            outcomes = list(current.status.outputs) if current else []
            ok = all(outcome.state == OutputState.OUTPUT_STATE_SUCCEEDED for outcome in outcomes)
            await self._finish(claim, record, outbox, states.SUCCEEDED if ok else states.FAILED)

    async def _outputs(
        self, record: RunRecord, claim: _Claim, outbox: Outbox, progress: _Progress, running: _Running
    ) -> None:
        """Generate and store every output without a recorded outcome (the pipeline of Generate)."""
        request = record.request
        done = record.done_outputs()
        created = asyncio.ensure_future(self._create_in_storage(request))

        stored = await self._stored_items(record) if record.status.attempts > 1 else {}
        runner = OutputRunner(
            peers=self._peers,
            settings=self._settings,
            run_id=record.run_id,
            remaining=lambda: None,
            created=created,
            stored=stored,
            start_wait=self._settings.run_start_wait,
        )
        slots = asyncio.Semaphore(min(max(request.concurrency, 1), self._settings.max_concurrency))

        async def into_log(index: int, spec: gateway_pb2.OutputSpec) -> gateway_pb2.OutputOutcome:
            """Run one output, its events into the log; returns its outcome."""
            async with slots, contextlib.aclosing(runner.run(index, spec)) as items:
                async for item in items:
                    if isinstance(item, OutputEnded):
                        return item.outcome
                    failed = item.output_failed if item.WhichOneof("event") == "output_failed" else None
                    if failed is not None and failed.status.code == NO_ROOM:
                        continue  # not a failure: the run goes back to wait (see _requeue)
                    await outbox.emit(item)
            raise AssertionError("an output always ends with its outcome")

        async def one(index: int, spec: gateway_pb2.OutputSpec) -> None:
            outcome = await into_log(index, spec)
            if outcome.state == OutputState.OUTPUT_STATE_FAILED and outcome.error.code == NO_ROOM:
                progress.no_room.append(outcome)
                return
            progress.outcomes.append(outcome)

            def record_outcome(current: RunRecord) -> bool:
                if outcome.output_index in current.done_outputs():
                    return False
                current.status.outputs.append(outcome)
                current.status.outputs.sort(key=lambda o: o.output_index)
                return True

            try:
                # The output's events reach the log before the record says it is done: a crash
                # in between repeats the output, never leaves the log without its media.
                await outbox.flush()
                await self._retry(lambda: self._store.change(record.run_id, record_outcome, holder=claim))
            except LostClaim:
                running.stop(lost=True)

        try:
            async with asyncio.TaskGroup() as group:
                for index, spec in enumerate(request.outputs):
                    if index not in done:
                        group.create_task(one(index, spec))
        finally:
            created.cancel()

    async def _stored_items(self, record: RunRecord) -> dict[tuple[int, int], storage_pb2.MediaRecord]:
        """What earlier attempts stored of the outputs still to do: those items are kept, not stored
        again, even when generating them again gives other bytes (a dead worker may have stored
        an output's media and died before recording its outcome)."""
        try:
            listed = await self._peers.storage.ListRunMedia(
                storage_pb2.ListRunMediaRequest(run_id=record.run_id), timeout=10.0
            )
        except grpc.RpcError as err:
            # Storage away: go on; its idempotency keys still refuse a second copy.
            log.warning("run %s: stored media not listed (%s)", record.run_id, err.code())  # type: ignore[attr-defined]
            return {}
        done = record.done_outputs()
        return {
            (media.output_index, media.item_index): media
            for media in listed.media
            if media.output_index not in done
        }

    async def _create_in_storage(self, request: gateway_pb2.SubmitRunRequest) -> storage_pb2.Run:
        """The run's record in storage; a resumed run finds the one its first worker made."""
        try:
            return await self._peers.storage.CreateRun(
                storage_pb2.CreateRunRequest(
                    run_id=request.run_id, context=request.context, caller=request.caller
                ),
                timeout=10.0,
            )
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.ALREADY_EXISTS:  # type: ignore[attr-defined]
                raise peer_error(err, "storage") from None
        try:
            stored = await self._peers.storage.GetRun(
                storage_pb2.GetRunRequest(run_id=request.run_id), timeout=10.0
            )
        except grpc.RpcError as err:
            raise peer_error(err, "storage") from None
        return stored.run

    async def _heartbeat(self, run_id: str, running: _Running) -> None:
        """Renew the claim; notice a cancel or a lost claim that the notification missed.

        The first look is at once: a cancel that came between the claim and this run being
        registered here was told to no one.
        """
        first = True
        while True:
            if not first:
                await asyncio.sleep(self._settings.heartbeat_seconds)
                with contextlib.suppress(Exception):
                    await running.claim.msg.in_progress()
            first = False
            try:
                current = await self._store.get(run_id)
            except Exception:  # noqa: BLE001 - NATS away: keep going, writes will retry
                continue
            if current is None or not running.claim.holds(current.delivery):
                running.stop(lost=True)
            elif current.status.cancel_requested:
                running.stop(cancel=True)

    async def _hand_back(self, claim: _Claim, record: RunRecord, outbox: Outbox) -> None:
        def back(current: RunRecord) -> bool:
            current.move(states.QUEUED)
            current.requeues += 1  # a hand-over is not a death
            return True

        await outbox.flush()
        await self._store.change(record.run_id, back, holder=claim)
        await claim.msg.nak()
        log.info("run %s handed back: this worker is stopping", record.run_id)

    async def _requeue(
        self, claim: _Claim, record: RunRecord, outbox: Outbox, error: status_pb2.Status
    ) -> None:
        def back(current: RunRecord) -> bool:
            current.move(states.QUEUED)
            current.requeues += 1
            return True

        await outbox.flush()
        updated = await self._retry(lambda: self._store.change(record.run_id, back, holder=claim))
        reason = status_pb2.Status(code=NO_ROOM, message=f"the generator has no room: {error.message}")
        outbox.put(
            stamped(
                record.run_id,
                state_changed=gateway_pb2.RunStateChanged(
                    state=states.QUEUED, attempt=updated.status.attempts, reason=reason
                ),
            )
        )
        await outbox.flush()
        await self._settle(claim.msg.nak(delay=self._settings.requeue_delay), "nak")
        due = time.monotonic() + self._settings.requeue_delay
        self._redelivery_due = min(due, self._redelivery_due or due)
        log.info("run %s requeued: the generator has no room", record.run_id)

    async def _finish(
        self,
        claim: _Claim,
        record: RunRecord,
        outbox: Outbox,
        target: int,
        error: status_pb2.Status | None = None,
    ) -> None:
        """Record the final state, then log run_completed, then acknowledge the message."""

        def final(current: RunRecord) -> bool:
            if current.state in states.FINAL:
                return False
            current.finish(target, error)
            return True

        await outbox.flush()
        updated = await self._retry(lambda: self._store.change(record.run_id, final, holder=claim))
        outbox.put(stamped(record.run_id, run_completed=completed_of(updated)))
        await outbox.flush()
        await self._settle(claim.msg.ack_sync(timeout=2.0), "ack")
        log.info("run %s %s", record.run_id, states.name(updated.state))

    async def _settle(self, call: Awaitable[Any], what: str) -> None:
        """Acknowledge or nak once: if it is lost, the message comes back after ``claim_seconds``
        and the next worker finds the record already moved on, which is the same outcome."""
        try:
            await call
        except Exception as err:  # noqa: BLE001 - see above
            log.warning("%s not confirmed (%s); the queue will redeliver and the record decides", what, err)

    async def _retry(self, call: Callable[[], Awaitable[T]]) -> T:
        """Call until NATS answers; a lost claim or a bug is raised at once."""
        started = time.monotonic()
        while True:
            try:
                return await call()
            except (LostClaim, states.IllegalMove):
                raise
            except Exception as err:  # noqa: BLE001 - NATS away: the run waits for it
                log.warning("NATS write failed after %.1fs (%s); retrying", time.monotonic() - started, err)
                await asyncio.sleep(RETRY_SECONDS)
