"""The run engine: what the gateway's run RPCs call, and the worker it runs.

The gateway connects to NATS in the background, so it starts (and serves Generate)
while NATS is away; until the connection is up, and whenever NATS cannot be reached,
the run RPCs answer UNAVAILABLE. Nothing is kept in memory instead: a run exists once
JetStream has stored it, and only then.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from gateway.errors import peer_error
from gateway.limits import over_limit
from gateway.ownership import sees
from gateway.peers import Peers
from gateway.runs import jetstream, states
from gateway.runs.events import EventLog, stamped, timestamp_now
from gateway.runs.jetstream import Layout
from gateway.runs.queue import QueuedRuns, RunQueue
from gateway.runs.store import LostClaim, RunRecord, RunStore, completed_of, fingerprint
from gateway.runs.worker import Worker, new_record
from gateway.settings import GatewaySettings
from mediagen.nats_client import ConnectionTrouble
from mediagen.scaffold.callers import Caller
from mediagen.scaffold.errors import ServiceError, invalid_argument
from mediagen.tasks import cancel_and_wait
from mediagen.v1 import gateway_pb2, storage_pb2

log = logging.getLogger("mediagen.gateway.runs")
DEFAULT_PAGE, MAX_PAGE = 50, 500
POSITION_SECONDS = 1.0
IDLE_SECONDS = 0.25


def unavailable(detail: str) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.UNAVAILABLE,
        f"the run queue (NATS JetStream) cannot be reached: {detail}",
        "RUNS_UNAVAILABLE",
    )


def retention_text(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    return f"{seconds:g}s"


@dataclass
class _Parts:
    nc: Client
    js: JetStreamContext
    store: RunStore
    events: EventLog
    queue: RunQueue
    queued: QueuedRuns


class RunEngine:
    def __init__(self, peers: Peers, settings: GatewaySettings) -> None:
        self._peers = peers
        self._settings = settings
        self._layout = Layout(settings.nats_prefix)
        self._parts: _Parts | None = None
        self._nc: Client | None = None
        self._trouble = ConnectionTrouble(log)
        """Why the connection last failed (told to callers while there is none)."""
        self._tasks: list[asyncio.Task[None]] = []
        self.worker: Worker | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._settings.nats_url.strip())

    async def start(self) -> None:
        if self.enabled:
            self._tasks.append(asyncio.create_task(self._connect(), name="runs-connect"))

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        if self._nc is not None:  # connected, whether or not the rest was set up
            with contextlib.suppress(Exception):
                await self._nc.close()

    async def _connect(self) -> None:
        while True:
            try:
                nc = self._nc = await jetstream.connect(self._settings, self._trouble)
                break
            except Exception as err:  # noqa: BLE001 - NATS not up yet: keep trying
                await self._trouble.note(err)
                await asyncio.sleep(1.0)
        js = nc.jetstream(timeout=5.0)
        while True:
            try:
                kv = await jetstream.ensure(js, self._layout, self._settings)
                break
            except Exception as err:  # noqa: BLE001 - JetStream not ready (e.g. cluster electing)
                log.warning("JetStream not ready (%s); retrying", err)
                await asyncio.sleep(1.0)
        store, events = RunStore(kv, js, self._layout.state_bucket), EventLog(js, self._layout)
        queue = RunQueue(nc, js, self._layout, self._settings)
        self._parts = _Parts(nc, js, store, events, queue, QueuedRuns(store))
        log.info("durable runs on NATS %s (role %s)", self._settings.nats_url, self._settings.role)
        if self._settings.role in ("worker", "both"):
            self.worker = Worker(nc, js, self._layout, store, events, self._peers, self._settings)
            while True:
                try:
                    await self.worker.serve()
                except Exception:  # e.g. NATS away while binding: start over
                    log.exception("the worker stopped; starting it again")
                    await asyncio.sleep(1.0)

    def _ready(self) -> _Parts:
        if not self.enabled:
            raise ServiceError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "durable runs are off on this gateway (MEDIAGEN_GATEWAY_NATS_URL is empty)",
                "RUNS_DISABLED",
            )
        why = f" (last error: {self._trouble.last})" if self._trouble.last else ""
        if self._parts is None:
            raise unavailable(f"not connected yet{why}")
        if not self._parts.nc.is_connected:
            raise unavailable(f"connection lost, reconnecting{why}")
        return self._parts

    # --- SubmitRun -------------------------------------------------------------------------

    async def submit(self, given: gateway_pb2.SubmitRunRequest) -> gateway_pb2.RunStatus:
        """Queue a run; OK only once JetStream has stored it (the publish is acknowledged).

        Writes in order: the submission event (always the first of the log), the queue
        message (from here on the run exists: a worker that finds no record makes it from
        the message), the record. A caller-given id is checked against its record first,
        and the message id de-duplicates a repeat racing the first.
        """
        parts = self._ready()
        request = gateway_pb2.SubmitRunRequest()
        request.CopyFrom(given)
        request.run_id = given.run_id or uuid.uuid4().hex
        request.priority = jetstream.priority_of(given.priority)  # type: ignore[assignment]
        try:
            if given.run_id:
                existing = await parts.store.get(request.run_id)
                if existing is not None:
                    return await self._same_run(parts, existing, request)
                await self._check_not_stored(request.run_id)
            await self._check_caller_room(parts, request.caller)
            status = new_record(request, timestamp_now(), "", 0).status
            await parts.events.publish(
                stamped(
                    request.run_id,
                    state_changed=gateway_pb2.RunStateChanged(state=states.QUEUED, status=status),
                )
            )
            stream, seq, _ = await parts.queue.enqueue(
                request.run_id,
                request.priority,
                request.caller,
                request.SerializeToString(deterministic=True),
            )
            record = new_record(request, status.created_at, stream, seq)
            created = await parts.store.create(record)
            if created:
                parts.queued.note(record)
            else:
                existing = await parts.store.get(request.run_id)
                assert existing is not None
                return await self._same_run(parts, existing, request)
            return await self._with_position(parts, record)
        except ServiceError:
            raise
        except Exception as err:  # noqa: BLE001 - NATS did not store it: the run was not accepted
            raise unavailable(f"{type(err).__name__}: {err}"[:200]) from None

    async def _check_caller_room(self, parts: _Parts, caller: str) -> None:
        """RESOURCE_EXHAUSTED when ``caller`` has ``caller_max_queued`` runs queued or running."""
        limit = self._settings.caller_max_queued
        if not limit:
            return
        active = sum(
            1
            for record in await parts.store.all()
            if record.status.caller == caller and record.state not in states.FINAL
        )
        if active >= limit:
            raise over_limit("caller_max_queued", limit, caller, "runs queued or running")

    async def _check_not_stored(self, run_id: str) -> None:
        """An id storage already has (a Generate run, or a run past the retention) is taken."""
        try:
            await self._peers.storage.GetRun(storage_pb2.GetRunRequest(run_id=run_id), timeout=10.0)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                return
            raise peer_error(err, "storage") from None
        raise ServiceError(
            grpc.StatusCode.ALREADY_EXISTS,
            f"run {run_id} already exists in storage",
            "RUN_ID_TAKEN",
            {"run_id": run_id},
        )

    async def _same_run(
        self, parts: _Parts, existing: RunRecord, request: gateway_pb2.SubmitRunRequest
    ) -> gateway_pb2.RunStatus:
        if fingerprint(existing.request) != fingerprint(request):
            raise ServiceError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"run {request.run_id} exists with a different request",
                "RUN_ID_TAKEN",
                {"run_id": request.run_id, "state": states.name(existing.state)},
            )
        return await self._with_position(parts, existing)

    async def _with_position(self, parts: _Parts, record: RunRecord) -> gateway_pb2.RunStatus:
        status = gateway_pb2.RunStatus()
        status.CopyFrom(record.status)
        if record.state == states.QUEUED and record.queue_stream:
            with contextlib.suppress(Exception):
                status.queue_position = await parts.queued.position(record)
        return status

    # --- GetRun, CancelRun, ListRuns -------------------------------------------------------

    async def status(self, run_id: str) -> gateway_pb2.RunStatus | None:
        parts = self._ready()
        try:
            record = await parts.store.get(run_id)
            if record is None:
                return None
            status = await self._with_position(parts, record)
            last = await parts.events.last(run_id)
        except ServiceError:
            raise
        except Exception as err:  # noqa: BLE001
            raise unavailable(f"{type(err).__name__}: {err}"[:200]) from None
        status.last_sequence = last.sequence if last else 0
        return status

    async def cancel(self, run_id: str, caller: Caller) -> gateway_pb2.RunStatus:
        """Queued: CANCELLED at once (record, then log, then queue). Running: the flag, then a word
        to every worker; the worker holding it stops it and records CANCELLED.

        A run ``caller`` may not see is not found."""
        parts = self._ready()
        was: list[int] = []
        try:
            found = await parts.store.get(run_id)
        except Exception as err:  # noqa: BLE001
            raise unavailable(f"{type(err).__name__}: {err}"[:200]) from None
        if found is None or not sees(found.status.caller, caller):
            raise self.not_found(run_id)

        def request_cancel(current: RunRecord) -> bool:
            was[:] = [current.state]
            if current.state in states.FINAL:
                return False
            current.status.cancel_requested = True
            if current.state == states.QUEUED:
                current.finish(states.CANCELLED)
            return True

        try:
            record = await parts.store.change(run_id, request_cancel)
            parts.queued.note(record)
            if was and was[0] == states.QUEUED:
                await parts.events.ensure_completed(completed_of(record))
                await parts.queue.remove(record.queue_stream, record.queue_seq)
            elif record.state == states.RUNNING:
                await parts.nc.publish(self._layout.cancel_subject, run_id.encode())
                await parts.nc.flush(timeout=5)
        except LostClaim:
            raise self.not_found(run_id) from None
        except ServiceError:
            raise
        except Exception as err:  # noqa: BLE001
            raise unavailable(f"{type(err).__name__}: {err}"[:200]) from None
        return record.status

    def not_found(self, run_id: str) -> ServiceError:
        kept = retention_text(self._settings.run_retention)
        return ServiceError(
            grpc.StatusCode.NOT_FOUND,
            f"no durable run {run_id}: never submitted, or finished more than {kept} ago "
            f"(run events and state are kept {kept})",
            "RUN_NOT_FOUND",
            {"run_id": run_id, "retention": kept},
        )

    async def list(
        self, request: gateway_pb2.ListRunsRequest, caller: Caller
    ) -> gateway_pb2.ListRunsResponse:
        """Newest first, paged by (creation time, run id) so a page never repeats or skips a run.

        Only the runs ``caller`` may see (its own; every run for an admin) are listed.

        Every retained record is read in one pass over the bucket (a watch of the last values)
        and filtered here: fine for the thousands of runs a retention period holds; an index
        stream would be the next step beyond that.
        """
        parts = self._ready()
        size = min(request.page_size or DEFAULT_PAGE, MAX_PAGE)
        after = _decode_token(request.page_token) if request.page_token else None
        try:
            records = await parts.store.all()
        except Exception as err:  # noqa: BLE001
            raise unavailable(f"{type(err).__name__}: {err}"[:200]) from None
        wanted = set(request.states)
        low = request.created_after.ToNanoseconds() if request.HasField("created_after") else None
        high = request.created_before.ToNanoseconds() if request.HasField("created_before") else None
        matching = []
        for record in records:
            status = record.status
            created = status.created_at.ToNanoseconds()
            if not sees(status.caller, caller):
                continue
            if wanted and status.state not in wanted:
                continue
            if any(status.context.labels.get(key) != value for key, value in request.labels.items()):
                continue
            if (low is not None and created < low) or (high is not None and created >= high):
                continue
            key = (created, status.run_id)
            if after is not None and key >= after:
                continue
            matching.append((key, status))
        matching.sort(key=lambda item: item[0], reverse=True)
        page = matching[:size]
        response = gateway_pb2.ListRunsResponse(runs=[status for _, status in page])
        if len(matching) > size:
            response.next_page_token = _encode_token(page[-1][0])
        return response

    # --- WatchRun --------------------------------------------------------------------------

    async def watch(self, run_id: str, after: int, caller: Caller) -> AsyncIterator[gateway_pb2.RunEvent]:
        """Replay after ``after`` and follow live through one ordered consumer until run_completed.

        A run ``caller`` may not see is not found."""
        parts = self._ready()
        try:
            record = await parts.store.get(run_id)
        except Exception as err:  # noqa: BLE001
            raise unavailable(f"{type(err).__name__}: {err}"[:200]) from None
        if record is None or not sees(record.status.caller, caller):
            raise self.not_found(run_id)
        config = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.ALL)
        if after:
            config = api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1
            )
        sub = await parts.js.subscribe(
            self._layout.events_subject(run_id),
            stream=self._layout.events_stream,
            ordered_consumer=True,
            config=config,
        )
        last, shown, checked = after, -1, 0.0
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=IDLE_SECONDS)
                except (TimeoutError, nats.errors.TimeoutError):
                    # Caught up with the log: while the run waits, say where it stands.
                    if time.monotonic() - checked < POSITION_SECONDS:
                        continue
                    checked = time.monotonic()
                    record = await self._quiet_get(parts, run_id)
                    if record is None or record.state != states.QUEUED:
                        continue
                    position = await self._position(parts, record)
                    if position is not None and position != shown:
                        shown = position
                        yield gateway_pb2.RunEvent(
                            sequence=last,
                            run_id=run_id,
                            time=timestamp_now(),
                            queue_position=gateway_pb2.QueuePosition(queue_position=position),
                        )
                    continue
                event = gateway_pb2.RunEvent.FromString(msg.data)
                event.sequence = last = msg.metadata.sequence.stream
                yield event
                if event.WhichOneof("event") == "run_completed":
                    return
                checked = 0.0
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _position(self, parts: _Parts, record: RunRecord) -> int | None:
        try:
            return await parts.queued.position(record)
        except Exception:  # noqa: BLE001 - a position is a courtesy; the events are what matter
            return None

    async def _quiet_get(self, parts: _Parts, run_id: str) -> RunRecord | None:
        try:
            return await parts.store.get(run_id)
        except Exception:  # noqa: BLE001 - NATS away: the watch waits for it
            return None


def _encode_token(key: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}:{key[1]}".encode()).decode()


def _decode_token(token: str) -> tuple[int, str]:
    try:
        created, run_id = base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)
        return int(created), run_id
    except (ValueError, UnicodeDecodeError):
        raise invalid_argument("page_token", "is not a token ListRuns returned") from None
