"""One shared WebSocket per ComfyUI backend, multiplexed to jobs by prompt id.

Completion is noticed by push (``executing{node:null}``), not polling, so a finished job is seen
within milliseconds. Jobs subscribe *before* they POST, so no early event is missed. When the
socket drops, it is reconnected with backoff under a **fresh** clientId: ComfyUI's cleanup of an
old socket deregisters the id even if a new socket took it over (the new one would go deaf).
Prompts submitted under an older id get no more events, so subscribers are told (``ws_down`` /
``ws_up`` pseudo-events) and fall back to polling ``/history`` and ``/queue``. The backoff can
grow to seconds while a backend is down, so whoever sees it answer again calls
:meth:`EventStream.reconnect_soon` and the next attempt starts at once instead of after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from mediagen.tasks import cancel_and_wait

log = logging.getLogger("mediagen.generator.events")

WS_UP = "ws_up"
WS_DOWN = "ws_down"
BACKEND_DOWN = "backend_down"


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    received: float = field(default_factory=time.monotonic)


class EventStream:
    def __init__(self, base_url: str, client_id_prefix: str, max_backoff: float = 2.0) -> None:
        self._url = base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/ws"
        self._prefix = client_id_prefix
        self._max_backoff = max_backoff
        self._subscribers: dict[str, asyncio.Queue[Event]] = {}
        self._connected = asyncio.Event()
        self._wake = asyncio.Event()
        self._status_pushed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self.client_id = ""
        self.queue_remaining = 0
        self.connects = 0
        self.last_error = ""

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"comfy-events {self._url}")

    async def stop(self) -> None:
        if self._task:
            await cancel_and_wait([self._task])
            self._task = None
        self._connected.clear()

    async def wait_connected(self, within: float) -> str:
        """The clientId of the live socket; raises TimeoutError when none comes up in time."""
        async with asyncio.timeout(within):
            await self._connected.wait()
        return self.client_id

    def reconnect_soon(self) -> None:
        """The backend answers again: end the backoff pause (no effect while connected)."""
        self._wake.set()

    async def status_pushes(self) -> AsyncIterator[int]:
        """The backend's queue count after each ``status`` push, for one reader (the backend
        pool: a push may give back a place); pushes that come while it is busy are read as one."""
        while True:
            await self._status_pushed.wait()
            self._status_pushed.clear()
            yield self.queue_remaining

    def subscribe(self, prompt_id: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers[prompt_id] = queue
        return queue

    def unsubscribe(self, prompt_id: str) -> None:
        self._subscribers.pop(prompt_id, None)

    def broadcast(self, kind: str, **data: Any) -> None:
        """Tell every subscribed job something about the backend itself."""
        for queue in self._subscribers.values():
            queue.put_nowait(Event(kind, data))

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            self._wake.clear()  # a nudge during this attempt skips the pause after it
            self.client_id = f"{self._prefix}-{uuid.uuid4().hex}"
            try:
                async with connect(
                    f"{self._url}?clientId={self.client_id}", max_size=None, open_timeout=5, close_timeout=1
                ) as ws:
                    self._ws = ws
                    self.connects += 1
                    self.last_error = ""
                    self._connected.set()
                    self.broadcast(WS_UP, client_id=self.client_id)
                    backoff = 0.05
                    await self._read(ws)
                self.last_error = "socket closed by the backend"
            except (OSError, TimeoutError, Exception) as exc:  # noqa: BLE001 - any failure means reconnect
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                self._ws = None
                if self._connected.is_set():
                    self._connected.clear()
                    self.broadcast(WS_DOWN, reason=self.last_error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def _read(self, ws: ClientConnection) -> None:
        async for frame in ws:
            if isinstance(frame, bytes):
                continue  # previews: not needed, outputs come from /view
            self._dispatch(frame)

    def _dispatch(self, text: str) -> None:
        try:
            message = json.loads(text)
            kind, data = str(message["type"]), message.get("data") or {}
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed event frame")
            return
        if kind == "status":
            info = data.get("status", {}).get("exec_info", {})
            self.queue_remaining = int(info.get("queue_remaining", self.queue_remaining))
            self.broadcast("status", queue_remaining=self.queue_remaining)
            self._status_pushed.set()
            return
        queue = self._subscribers.get(str(data.get("prompt_id", "")))
        if queue is not None:
            queue.put_nowait(Event(kind, data))
