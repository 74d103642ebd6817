"""WebSocket registry and the single outgoing message queue.

Mirrors the real server's choices, pitfalls included: one socket per clientId in a plain dict,
a reconnect replaces the entry without closing the old socket, and the *old* socket's cleanup
removes the id even when a newer socket owns it (the newer socket then goes deaf). Every event
goes through one FIFO publish loop, so ordering matches the order the executor produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .config import Faults

PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4


@dataclass
class Outgoing:
    event: str | int
    data: Any
    sid: str | None


@dataclass
class Hub:
    faults: Faults
    max_upload_size: int
    sockets: dict[str, web.WebSocketResponse] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    all_sockets: set[web.WebSocketResponse] = field(default_factory=set)
    queue: asyncio.Queue[Outgoing] = field(default_factory=asyncio.Queue)
    events_sent: int = 0
    drops: int = 0

    def send_sync(self, event: str | int, data: Any, sid: str | None = None) -> None:
        """Queue an event for the publish loop (``sid=None`` broadcasts to every socket)."""
        self.queue.put_nowait(Outgoing(event, data, sid))

    def server_features(self) -> dict[str, Any]:
        return {"supports_preview_metadata": True, "max_upload_size": self.max_upload_size}

    def supports_metadata(self, sid: str | None) -> bool:
        if sid is None:
            return False
        flags = self.metadata.get(sid, {}).get("feature_flags", {})
        return bool(flags.get("supports_preview_metadata", False))

    async def publish_loop(self) -> None:
        while True:
            message = await self.queue.get()
            try:
                await self.send(message)
                await self._maybe_drop()
            finally:
                self.queue.task_done()

    async def flush(self) -> None:
        """Wait until everything queued so far has been written (tests, shutdown)."""
        await self.queue.join()

    async def send(self, message: Outgoing) -> None:
        payload: bytes | dict[str, Any]
        if isinstance(message.event, int):
            payload = struct.pack(">I", message.event) + bytes(message.data)
        else:
            payload = {"type": message.event, "data": message.data}
        targets = (
            list(self.sockets.values())
            if message.sid is None
            else ([self.sockets[message.sid]] if message.sid in self.sockets else [])
        )
        for ws in targets:
            with contextlib.suppress(ConnectionError, RuntimeError):
                if isinstance(payload, bytes):
                    await ws.send_bytes(payload)
                else:
                    await ws.send_str(json.dumps(payload))
        self.events_sent += 1

    async def _maybe_drop(self) -> None:
        budget = self.faults.drop_ws_after_events
        if budget is None:
            return
        budget -= 1
        self.faults.drop_ws_after_events = budget if budget > 0 else None
        if budget <= 0:
            await self.drop_all()

    async def drop_all(self) -> None:
        """Close every open WebSocket (fault injection)."""
        self.drops += 1
        for ws in list(self.all_sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close()

    def preview_frame(self, image_png: bytes) -> bytes:
        return struct.pack(">I", 2) + image_png

    def preview_with_metadata(self, image_png: bytes, metadata: dict[str, Any]) -> bytes:
        meta = json.dumps({**metadata, "image_type": "image/png"}).encode()
        return struct.pack(">I", len(meta)) + meta + image_png

    async def handle(self, request: web.Request, on_connect: Any) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "")
        if sid:
            self.sockets.pop(sid, None)
        else:
            import uuid

            sid = uuid.uuid4().hex
        self.sockets[sid] = ws
        self.metadata[sid] = {"feature_flags": {}}
        self.all_sockets.add(ws)
        try:
            await self.send(Outgoing("status", {"status": on_connect.queue_info(), "sid": sid}, sid))
            node = on_connect.running_node_for(sid)
            if node is not None:
                await self.send(Outgoing("executing", {"node": node}, sid))
            first = True
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                with contextlib.suppress(ValueError, AttributeError):
                    data = json.loads(msg.data)
                    if first and data.get("type") == "feature_flags":
                        self.metadata[sid]["feature_flags"] = data.get("data", {})
                        await self.send(Outgoing("feature_flags", self.server_features(), sid))
                first = False
        finally:
            # The real server's cleanup: it removes the id even if a newer socket owns it now.
            self.sockets.pop(sid, None)
            self.metadata.pop(sid, None)
            self.all_sockets.discard(ws)
        return ws
