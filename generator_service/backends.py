"""The ComfyUI backends this generator can use, and which one gets the next job.

Each backend owns one HTTP client, one event socket and, in managed mode, its process. A backend
is *up* when its HTTP side answers, and *ready* (what its status reports as up) once its event
socket is connected too: a job needs the socket's clientId before it can submit. When a backend
comes up, its socket is told to reconnect now (its backoff may have grown to seconds), and the
prompts the journal says were orphaned there are cleaned up.

A job goes to the up backend with the shortest queue, ready ones first (one placed on a backend
whose socket is still reconnecting waits ``connect_wait`` for it): the other callers' prompts in
ComfyUI's queue plus every job of this generator there (so jobs still uploading or downloading
count too, and our queued prompts count once, not twice). When every backend is at the limit
a job waits for one of ours to free a place, first come first served, for as long as its
request's ``place_wait`` asks (``place_wait_seconds`` when it does not say, capped at
``max_place_wait_seconds``, never past its call's deadline); then its caller is told
RESOURCE_EXHAUSTED, so it can go elsewhere instead of waiting here longer. Waiting here
rather than asking again means a freed place is taken at once, and the refusals (each a
whole call to check and answer) are few.

The pool holds backends of every kind (:class:`generator_service.providers.base.BackendKind`):
a job is placed among the backends of its template's kind, a remote one by its own concurrency
limit instead of a queue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any

import grpc

from generator_service.comfy.client import BackendUnreachable, ComfyClient
from generator_service.comfy.events import BACKEND_DOWN, EventStream
from generator_service.journal import Journal
from generator_service.process import ManagedProcess
from generator_service.providers.base import BackendKind, PlacedBackend, RemoteBackend
from generator_service.recovery import recover
from mediagen.scaffold import ServiceError
from mediagen.scaffold.health import HealthMonitor
from mediagen.scaffold.metrics import BACKEND_UP, QUEUE_DEPTH
from mediagen.tasks import cancel_and_wait
from mediagen.v1 import generator_pb2

log = logging.getLogger("mediagen.generator.backends")


class Backend:
    kind = BackendKind.COMFYUI

    def __init__(
        self,
        name: str,
        url: str,
        *,
        client_id_prefix: str,
        http_timeout: float,
        journal: Journal,
        cancel_wait: float,
        process: ManagedProcess | None = None,
    ) -> None:
        """``process``: the ComfyUI this generator runs at ``url`` (managed mode), None when attached."""
        self.name, self.url, self.process = name, url, process
        self.identity = name if process is not None else url
        """What the journal calls it: the URL of an attached ComfyUI; a managed one's URL changes
        with its port at every generator start, its name (``managed-<i>``) does not."""
        self.files = process.files if process is not None else None
        """The job files it leaves, removable in managed mode only (see ``job_files``)."""
        self.client = ComfyClient(url, http_timeout)
        self.events = EventStream(url, client_id_prefix)
        self.journal = journal
        self.active = 0
        self._queued_by_us = 0
        self.up = False
        self.last_error = "not checked yet"
        self._cancel_wait = cancel_wait
        self._tasks: set[asyncio.Task[Any]] = set()
        self._recovery: asyncio.Task[Any] | None = None

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Background work that must outlive the call that started it (clean-up, cancels)."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def load(self) -> int:
        """Jobs on this backend: other callers' prompts in its queue plus all of ours.

        ComfyUI's ``queue_remaining`` counts our submitted prompts too, and ``active`` counts
        every job of ours placed here (also while uploading or downloading), so ours are taken
        out of the first term rather than counted twice.
        """
        return max(self.events.queue_remaining - self._queued_by_us, 0) + self.active

    @contextlib.contextmanager
    def queued_by_us(self) -> Iterator[None]:
        """Count one prompt of ours in this backend's queue while the block runs (submit to finish)."""
        self._queued_by_us += 1
        try:
            yield
        finally:
            self._queued_by_us -= 1

    @property
    def ready(self) -> bool:
        return self.up and self.events.connected

    def set_up(self, up: bool, why: str = "") -> None:
        came_up = up and not self.up
        if self.up and not up:
            log.warning("backend %s is down: %s", self.name, why)
            self.events.broadcast(BACKEND_DOWN, reason=why)
        self.up, self.last_error = up, why
        BACKEND_UP.labels(self.name).set(1 if up else 0)
        if came_up:
            self.events.reconnect_soon()
            self.recover_orphans(fresh_process=self.process is not None)

    def recover_orphans(self, fresh_process: bool = False) -> None:
        """Clean up what the journal says was left here, unless that is already under way.

        ``fresh_process``: our managed ComfyUI has just (re)started, so nothing is left to stop.
        """
        if (self._recovery is None or self._recovery.done()) and self.journal.orphans(self.identity):
            self._recovery = self.spawn(
                recover(
                    self.client,
                    self.journal,
                    self.identity,
                    fresh_process=fresh_process,
                    cancel_wait=self._cancel_wait,
                    files=self.files,
                )
            )

    async def check(self) -> None:
        try:
            async with asyncio.timeout(2.0):
                await self.client.system_stats()
        except (BackendUnreachable, TimeoutError) as exc:
            if self.process is None:  # a managed backend is judged by its supervisor
                self.set_up(False, str(exc) or "timed out")
            return
        self.set_up(True)
        self.recover_orphans()
        QUEUE_DEPTH.labels(self.name).set(self.events.queue_remaining)

    async def status(self) -> generator_pb2.BackendStatus:
        status = generator_pb2.BackendStatus(
            name=self.name,
            url=self.url,
            up=self.ready,
            managed=self.process is not None,
            active_jobs=self.active,
            restarts=self.process.restarts if self.process else 0,
            last_error=self.last_error,
            kind=self.kind.value,
        )
        if self.up and not self.events.connected:
            status.last_error = f"event socket not connected: {self.events.last_error or 'connecting'}"
        if self.up:
            try:
                queue = await self.client.queue()
                status.queue_running, status.queue_pending = len(queue.running), len(queue.pending)
                status.running_prompt_id = queue.running[0].prompt_id if queue.running else ""
            except BackendUnreachable as exc:
                status.last_error = str(exc)
        return status

    async def stop_process(self) -> None:
        """End a managed ComfyUI and whatever it runs (shutdown); its jobs fail at once."""
        if self.process:
            await self.process.stop()
            self.set_up(False, "stopped: the generator is shutting down")

    async def close(self, wait: float = 1.0) -> None:
        """Background clean-ups get ``wait`` seconds, then are abandoned (the journal keeps them)."""
        if self._tasks:
            _, unfinished = await asyncio.wait(set(self._tasks), timeout=wait)
            for task in unfinished:
                task.cancel()
            if unfinished:
                log.warning("backend %s: %d clean-up(s) abandoned at shutdown", self.name, len(unfinished))
                await asyncio.wait(unfinished)
        await self.events.stop()
        await self.stop_process()
        await self.client.close()


PoolMember = Backend | RemoteBackend
PLACE_RECHECK = 1.0
"""Seconds between looks at the backends while waiting for a place without being woken (by a
release or a status push): covers a place freed while a backend's event socket was down."""


class BackendPool:
    def __init__(self, backends: Sequence[PoolMember], max_queue: int) -> None:
        self.backends = list(backends)
        self._max_queue = max_queue
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._push_watchers: list[asyncio.Task[None]] = []
        self.monitor: HealthMonitor | None = None

    async def start(self) -> None:
        """Attached backends are checked once; managed ones must answer (ComfyUIStartFailed if not)."""
        comfy = [b for b in self.backends if isinstance(b, Backend)]
        for backend in comfy:
            backend.events.start()
            self._push_watchers.append(asyncio.create_task(self._wake_on_pushes(backend)))
            if backend.process:
                backend.process.start(backend.client.system_stats, self._notifier(backend))
        await asyncio.gather(*(b.check() for b in self.backends if b.process is None))
        starts = [asyncio.ensure_future(b.process.started()) for b in comfy if b.process]
        if not starts:
            return
        await asyncio.wait(starts, return_when=asyncio.FIRST_EXCEPTION)
        failed = [error for s in starts if s.done() and not s.cancelled() and (error := s.exception())]
        if failed:
            for start in starts:
                start.cancel()
            await self.close()
            raise failed[0]

    def recover_orphans(self, identity: str) -> None:
        """Orphans appeared on the backend known as ``identity`` (adopted from a dead replica)."""
        for backend in self.backends:
            if isinstance(backend, Backend) and backend.identity == identity and backend.up:
                backend.recover_orphans()

    def _notifier(self, backend: Backend) -> Any:
        def notify(up: bool, why: str) -> None:
            backend.set_up(up, why)
            if not up and self.monitor and not any(b.up for b in self.backends):
                backend.spawn(self.monitor.mark_down("comfyui", why))

        return notify

    def acquire(self) -> Backend:
        """The least loaded up ComfyUI backend, ready ones first, with one more active job on it."""
        backend = self.acquire_kind(BackendKind.COMFYUI)
        assert isinstance(backend, Backend)
        return backend

    def acquire_kind(self, kind: BackendKind) -> PoolMember:
        """The least loaded up backend of ``kind``, with one more active job counted on it."""
        candidates = [b for b in self.backends if b.kind is kind]
        up = [b for b in candidates if b.up]
        if not up:
            why = "; ".join(f"{b.name}: {b.last_error}" for b in candidates) or "none configured"
            name = "ComfyUI" if kind is BackendKind.COMFYUI else kind.value
            raise ServiceError(grpc.StatusCode.UNAVAILABLE, f"no {name} backend is up ({why})", "NO_BACKEND")
        best = min(up, key=lambda b: (b.load >= self._limit(b), not b.ready, b.load, b.active))
        if best.load >= self._limit(best):
            limit = self._limit(best)
            raise ServiceError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"every {kind.value} backend's queue is full ({limit} jobs each)",
                "QUEUE_FULL",
                {"max_queue_per_backend": str(limit), "backend_kind": kind.value},
            )
        best.active += 1
        return best

    async def acquire_waiting(
        self, kind: BackendKind, *, wait: float, deadline: float | None = None
    ) -> PoolMember:
        """:meth:`acquire_kind`, waiting up to ``wait`` seconds (and until ``deadline``, loop time)
        for a place when every backend of ``kind`` is full, in turn with the other waiters."""
        loop = asyncio.get_running_loop()
        until = loop.time() + wait
        if deadline is not None:
            until = min(until, deadline)
        if not self._waiting:
            try:
                return self.acquire_kind(kind)
            except ServiceError as exc:
                if exc.code != grpc.StatusCode.RESOURCE_EXHAUSTED or loop.time() >= until:
                    raise
        first = True
        while True:
            turn: asyncio.Future[None] = loop.create_future()
            if first:
                self._waiting.append(turn)
            else:
                self._waiting.appendleft(turn)  # still first in line among those who came after
            first = False
            try:
                # Woken by a release; also looks again now and then, since other callers'
                # prompts on a shared ComfyUI leave its queue without telling us.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        asyncio.shield(turn), max(min(PLACE_RECHECK, until - loop.time()), 0)
                    )
            except BaseException:
                if turn.done():
                    self._wake_next()  # the place this waiter was woken for goes to the next one
                raise
            finally:
                with contextlib.suppress(ValueError):
                    self._waiting.remove(turn)
            try:
                return self.acquire_kind(kind)
            except ServiceError as exc:
                if turn.done() and self._has_room(other_than=kind):
                    self._wake_next()  # the place freed is of another kind: pass it on
                if exc.code != grpc.StatusCode.RESOURCE_EXHAUSTED or loop.time() >= until:
                    raise

    async def _wake_on_pushes(self, backend: Backend) -> None:
        """Wake waiters, first in line first, for the room a status push leaves on ``backend``.

        ComfyUI's queue count gives a finished prompt's place back only with its next push,
        a moment after the release that woke a waiter for it; and other callers' prompts leave
        its queue without any release here. Each push is the moment such a place frees, so
        waiters need not look again and again on a timer to find it.
        """
        async for _ in backend.events.status_pushes():
            if backend.up:
                for _room in range(min(self._limit(backend) - backend.load, len(self._waiting))):
                    self._wake_next()

    def _has_room(self, *, other_than: BackendKind) -> bool:
        """Whether a backend of another kind than ``other_than`` could take a job now.

        A waiter woken for a place it cannot use passes the wake on only then. A place of its
        own kind that was taken meanwhile, or that ComfyUI's queue count has not yet given back
        (its status push comes a moment after the prompt's end), is no reason to wake the next
        waiter: that one would find the same and wake the next, and the waiters would wake each
        other in a loop until the push came: the push wakes a waiter itself
        (:meth:`_wake_on_pushes`), and the recheck every ``PLACE_RECHECK`` covers a place that
        frees while the event socket is down.
        """
        return any(b.kind is not other_than and b.up and b.load < self._limit(b) for b in self.backends)

    def _wake_next(self) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    def _limit(self, backend: PoolMember) -> int:
        return backend.capacity if isinstance(backend, RemoteBackend) else self._max_queue

    def release(self, backend: PlacedBackend) -> None:
        backend.active -= 1
        self._wake_next()

    async def health_check(self) -> None:
        await asyncio.gather(*(b.check() for b in self.backends))
        if not any(b.up for b in self.backends):
            raise RuntimeError("; ".join(f"{b.name}: {b.last_error}" for b in self.backends))

    async def stop_processes(self) -> None:
        """Managed ComfyUIs are ended first at shutdown: their jobs then need no cancelling."""
        await asyncio.gather(*(b.stop_process() for b in self.backends if isinstance(b, Backend)))

    async def close(self) -> None:
        await cancel_and_wait(self._push_watchers)
        self._push_watchers.clear()
        await asyncio.gather(*(b.close() for b in self.backends))
