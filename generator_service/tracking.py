"""Follow one submitted prompt until ComfyUI has finished it, and learn what it made.

Push first: events from the shared socket drive progress, and ``executing{node:null}`` for the
prompt (sent after the history write) ends the wait. When the pushes told the whole outcome (see
:mod:`generator_service.comfy.pushed`) the prompt's entry is built from them and ``/history`` is
not read on the way to the download; otherwise it is read right after that event. Because pushes
can be lost (socket dropped or replaced, prompt deleted while pending, a backend that goes quiet),
the follower cross-checks ``/history/{id}`` and ``/queue``: every ``poll_interval`` while the
socket is down or the prompt was submitted under an older clientId, and after
``watchdog_quiet_seconds`` of silence otherwise.
``/history`` answers ``{}`` for pending and unknown prompts alike, so a prompt counts as lost only
when it is in neither the queue nor the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from generator_service import failures
from generator_service.comfy import events as ev
from generator_service.comfy.client import BackendUnreachable, ComfyClient
from generator_service.comfy.events import Event, EventStream
from generator_service.comfy.pushed import PushedOutcome
from generator_service.job_ids import JobIds
from generator_service.positions import POSITION, PositionLookup
from mediagen.v1 import common_pb2

_UNHEARD = frozenset({ev.WS_UP, ev.WS_DOWN, "status", POSITION})
"""Event kinds that say nothing about whether the backend still works on the prompt."""


@dataclass(frozen=True, kw_only=True)
class FollowLimits:
    watchdog_quiet: float
    poll_interval: float
    backend_lost: float
    history_retry: float
    progress_interval: float
    """At most about one report of a stage per this many seconds per job (see Outbox), and as
    many queue position lookups."""


@dataclass(frozen=True, slots=True)
class Finished:
    """The prompt is over on the backend: its history entry, or one built from its pushes (always
    the follower's last step)."""

    entry: dict[str, Any]


Step = common_pb2.Progress | Finished


class Follower:
    """Follows one prompt: :meth:`follow` yields its progress for the caller, then :class:`Finished`.

    Failures (an execution error, an interrupt from elsewhere, a lost prompt or backend) are raised
    from the iteration, as ``ServiceError``.
    """

    def __init__(
        self,
        *,
        client: ComfyClient,
        stream: EventStream,
        inbox: asyncio.Queue[Event],
        ids: JobIds,
        client_id: str,
        graph: dict[str, Any],
        limits: FollowLimits,
        include_previews: bool = False,
        accepted_position: int = 0,
    ) -> None:
        self._client, self._stream, self._inbox = client, stream, inbox
        self._ids, self._client_id, self._graph = ids, client_id, graph
        self._limits = limits
        self._started: set[str] = set()
        self._cached = 0
        self._unreachable_since: float | None = None
        self.execution_started: float | None = None
        # When the backend finished: the completion push's arrival when there was one, not when
        # the history answered after it, so one backend's consecutive executions never overlap.
        self.finished_at: float | None = None
        self._positions = PositionLookup(client, ids.prompt_id, inbox, interval=limits.progress_interval)
        self._reported_position = accepted_position
        """The queue position last reported to the caller: the accepted event's at first."""
        self._pushes = PushedOutcome(ids.prompt_id, graph, include_previews=include_previews)

    def _waiting(self) -> bool:
        return self.execution_started is None and not self._started

    def _deaf(self) -> bool:
        """True when pushes for this prompt cannot arrive (socket down or a newer clientId)."""
        return not self._stream.connected or self._stream.client_id != self._client_id

    async def follow(self) -> AsyncGenerator[Step, None]:
        """Progress reports while the prompt waits and runs, then :class:`Finished`, then nothing.

        Close it (``contextlib.aclosing``) if it is left before its end: a position lookup may run.
        """
        try:
            last_heard = last_check = time.monotonic()
            while True:
                if self._deaf():
                    self._pushes.gap = True
                    due = last_check + self._limits.poll_interval
                else:
                    due = max(last_heard, last_check) + self._limits.watchdog_quiet
                try:
                    event = (
                        self._inbox.get_nowait()
                        if not self._inbox.empty()
                        else await asyncio.wait_for(self._inbox.get(), max(0.0, due - time.monotonic()))
                    )
                except TimeoutError:
                    self._pushes.gap = True
                    entry, position = await self._cross_check()
                    if entry is not None:
                        yield Finished(entry)
                        return
                    if (queued := self._queued(position)) is not None:
                        yield queued
                    last_check = time.monotonic()
                    continue
                if event.kind not in _UNHEARD:
                    last_heard = event.received
                self._pushes.note(event)
                if event.kind == "executing" and event.data.get("node") is None:
                    self.finished_at = event.received
                    if (pushed := self._pushes.entry()) is not None:
                        yield Finished(pushed)
                        return
                    async with contextlib.aclosing(self._history_after_finish()) as steps:
                        async for step in steps:
                            yield step
                    return
                if (progress := self._on_event(event)) is not None:
                    yield progress
        finally:
            await self._positions.close()

    def _on_event(self, event: Event) -> common_pb2.Progress | None:
        """What the caller is told of one event (None: nothing); raises for a failed prompt."""
        data = event.data
        if event.kind == "execution_start":
            self.execution_started = event.received
        elif event.kind == "execution_cached":
            self._cached = len(data.get("nodes") or [])
        elif event.kind == "executing":
            self._started.add(str(data.get("node")))
            return self._executing(str(data.get("node")))
        elif event.kind == "progress":
            return self._executing(str(data.get("node")), int(data.get("value", 0)), int(data.get("max", 0)))
        elif event.kind == "execution_error":
            raise failures.execution_failed(data, self._ids)
        elif event.kind == "execution_interrupted":
            raise failures.interrupted_elsewhere(data, self._ids)
        elif event.kind == ev.BACKEND_DOWN:
            raise failures.unavailable(
                f"backend {self._ids.backend} went down: {data.get('reason', '')}",
                self._ids,
            )
        elif event.kind == "status":
            if int(data.get("queue_remaining", 0)) > 1 and self._waiting():
                self._positions.start()
        elif event.kind == POSITION:
            return self._queued(int(data["position"]))
        return None

    def _executing(self, node_id: str, value: int = 0, maximum: int = 0) -> common_pb2.Progress:
        node = self._graph.get(node_id, {})
        return common_pb2.Progress(
            stage=common_pb2.PROGRESS_STAGE_EXECUTING,
            node_id=node_id,
            node_type=str(node.get("class_type", "")) if isinstance(node, dict) else "",
            value=max(value, 0),
            max=max(maximum, 0),
            nodes_done=min(self._cached + max(len(self._started) - 1, 0), len(self._graph)),
            nodes_total=len(self._graph),
        )

    def _queued(self, position: int | None) -> common_pb2.Progress | None:
        """How many jobs are ahead, while the prompt still waits (None once it started, unknown,
        or as last reported: a prompt queued behind ours moves nothing, and a report that says
        nothing new would still cost every hop to the caller a message)."""
        if not position or not self._waiting() or position == self._reported_position:
            return None
        self._reported_position = position
        return common_pb2.Progress(
            stage=common_pb2.PROGRESS_STAGE_QUEUED, queue_position=position, nodes_total=len(self._graph)
        )

    async def _history_after_finish(self) -> AsyncGenerator[Step, None]:
        """History right after the final event; retried briefly in case it lags the event."""
        give_up = time.monotonic() + self._limits.history_retry
        pause = 0.005
        while True:
            try:
                entry = await self._client.history(self._ids.prompt_id)
            except BackendUnreachable as exc:
                raise failures.unavailable(str(exc), self._ids) from None
            if entry is not None:
                self.finished_at = self.finished_at or time.monotonic()
                yield Finished(entry)
                return
            if time.monotonic() > give_up:
                found, position = await self._cross_check()
                if found is not None:
                    yield Finished(found)
                    return
                if (queued := self._queued(position)) is not None:
                    yield queued
                give_up = time.monotonic() + self._limits.history_retry
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)

    async def _cross_check(self) -> tuple[dict[str, Any] | None, int | None]:
        """Watchdog/poll: the history entry if finished, else the queue position (None when the
        backend did not answer); raises when the prompt is lost."""
        prompt_id = self._ids.prompt_id
        try:
            entry = await self._client.history(prompt_id)
            if entry is None:
                queue = await self._client.queue()
                if queue.contains(prompt_id):
                    self._unreachable_since = None
                    return None, queue.position(prompt_id)
                entry = await self._client.history(prompt_id)
        except BackendUnreachable as exc:
            self._still_unreachable(str(exc))
            return None, None
        if entry is None:
            raise failures.unavailable(
                f"prompt {prompt_id} is neither queued nor in the history of {self._ids.backend} "
                "(deleted, cleared, or the backend restarted)",
                self._ids,
                "PROMPT_LOST",
            )
        self.finished_at = self.finished_at or time.monotonic()
        return entry, None

    def _still_unreachable(self, why: str) -> None:
        now = time.monotonic()
        self._unreachable_since = self._unreachable_since or now
        if now - self._unreachable_since >= self._limits.backend_lost:
            raise failures.unavailable(
                f"backend {self._ids.backend} unreachable: {why}",
                self._ids,
                "BACKEND_UNREACHABLE",
            )
