"""Follow one submitted prompt until ComfyUI has finished it, and fetch its history entry.

Push first: events from the shared socket drive progress, and ``executing{node:null}`` for the
prompt (sent after the history write) ends the wait. Because pushes can be lost (socket dropped or
replaced, prompt deleted while pending, a backend that goes quiet), the follower cross-checks
``/history/{id}`` and ``/queue``: every ``poll_interval`` while the socket is down or the prompt
was submitted under an older clientId, and after ``watchdog_quiet_seconds`` of silence otherwise.
``/history`` answers ``{}`` for pending and unknown prompts alike, so a prompt counts as lost only
when it is in neither the queue nor the history.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from generator_service import failures
from generator_service.comfy import events as ev
from generator_service.comfy.client import BackendUnreachable, ComfyClient
from generator_service.comfy.events import Event, EventStream
from generator_service.positions import PositionReporter
from mediagen.v1 import common_pb2

Emit = Callable[[common_pb2.Progress], Awaitable[None]]


@dataclass(frozen=True)
class FollowLimits:
    watchdog_quiet: float
    poll_interval: float
    backend_lost: float
    history_retry: float


class Follower:
    def __init__(
        self,
        client: ComfyClient,
        stream: EventStream,
        inbox: asyncio.Queue[Event],
        prompt_id: str,
        client_id: str,
        graph: dict[str, Any],
        backend: str,
        limits: FollowLimits,
    ) -> None:
        self._client, self._stream, self._inbox = client, stream, inbox
        self._prompt_id, self._client_id, self._graph = prompt_id, client_id, graph
        self._backend, self._limits = backend, limits
        self._started: set[str] = set()
        self._cached = 0
        self._unreachable_since: float | None = None
        self.execution_started: float | None = None
        # When the backend finished: the completion push's arrival when there was one, not when
        # the history answered after it, so one backend's consecutive executions never overlap.
        self.finished_at: float | None = None
        self._positions = PositionReporter(client, prompt_id, len(graph), self._waiting)

    def _waiting(self) -> bool:
        return self.execution_started is None and not self._started

    def _deaf(self) -> bool:
        """True when pushes for this prompt cannot arrive (socket down or a newer clientId)."""
        return not self._stream.connected or self._stream.client_id != self._client_id

    async def follow(self, emit: Emit) -> dict[str, Any]:
        try:
            return await self._follow(emit)
        finally:
            await self._positions.close()

    async def _follow(self, emit: Emit) -> dict[str, Any]:
        last_heard = last_check = time.monotonic()
        while True:
            if self._deaf():
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
                entry = await self._cross_check(emit)
                if entry is not None:
                    return entry
                last_check = time.monotonic()
                continue
            if event.kind not in (ev.WS_UP, ev.WS_DOWN, "status"):
                last_heard = event.received
            if event.kind == "executing" and event.data.get("node") is None:
                self.finished_at = event.received
                return await self._history_after_finish(emit)
            await self._on_event(event, emit)

    async def _on_event(self, event: Event, emit: Emit) -> None:
        data = event.data
        if event.kind == "execution_start":
            self.execution_started = event.received
        elif event.kind == "execution_cached":
            self._cached = len(data.get("nodes") or [])
        elif event.kind == "executing":
            self._started.add(str(data.get("node")))
            await emit(self._executing(str(data.get("node"))))
        elif event.kind == "progress":
            await emit(
                self._executing(str(data.get("node")), int(data.get("value", 0)), int(data.get("max", 0)))
            )
        elif event.kind == "execution_error":
            raise failures.execution_failed(data, self._prompt_id, self._backend)
        elif event.kind == "execution_interrupted":
            raise failures.interrupted_elsewhere(data, self._prompt_id, self._backend)
        elif event.kind == ev.BACKEND_DOWN:
            raise failures.unavailable(
                f"backend {self._backend} went down: {data.get('reason', '')}", self._prompt_id, self._backend
            )
        elif event.kind == "status":
            self._positions.on_status(int(data.get("queue_remaining", 0)), emit)

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

    async def _history_after_finish(self, emit: Emit) -> dict[str, Any]:
        """History right after the final event; retried briefly in case it lags the event."""
        give_up = time.monotonic() + self._limits.history_retry
        pause = 0.005
        while True:
            try:
                entry = await self._client.history(self._prompt_id)
            except BackendUnreachable as exc:
                raise failures.unavailable(str(exc), self._prompt_id, self._backend) from None
            if entry is not None:
                self.finished_at = self.finished_at or time.monotonic()
                return entry
            if time.monotonic() > give_up:
                found = await self._cross_check(emit)
                if found is not None:
                    return found
                give_up = time.monotonic() + self._limits.history_retry
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)

    async def _cross_check(self, emit: Emit) -> dict[str, Any] | None:
        """Watchdog/poll: the history entry if finished, None while queued; lost otherwise."""
        try:
            entry = await self._client.history(self._prompt_id)
            if entry is None:
                queue = await self._client.queue()
                if queue.contains(self._prompt_id):
                    self._unreachable_since = None
                    await self._positions.report(queue.position(self._prompt_id), emit)
                    return None
                entry = await self._client.history(self._prompt_id)
        except BackendUnreachable as exc:
            self._still_unreachable(str(exc))
            return None
        if entry is None:
            raise failures.unavailable(
                f"prompt {self._prompt_id} is neither queued nor in the history of {self._backend} "
                "(deleted, cleared, or the backend restarted)",
                self._prompt_id,
                self._backend,
                "PROMPT_LOST",
            )
        self.finished_at = self.finished_at or time.monotonic()
        return entry

    def _still_unreachable(self, why: str) -> None:
        now = time.monotonic()
        self._unreachable_since = self._unreachable_since or now
        if now - self._unreachable_since >= self._limits.backend_lost:
            raise failures.unavailable(
                f"backend {self._backend} unreachable: {why}",
                self._prompt_id,
                self._backend,
                "BACKEND_UNREACHABLE",
            )
