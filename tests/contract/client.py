"""A minimal ComfyUI client for the contract tests: HTTP calls plus a recording WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Recorder:
    """Reads one WebSocket in the background and keeps every frame."""

    ws: aiohttp.ClientWebSocketResponse
    client_id: str
    texts: list[dict[str, Any]] = field(default_factory=list)
    binaries: list[bytes] = field(default_factory=list)
    frames: list[tuple[str, Any]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    data = json.loads(message.data)
                    self.texts.append(data)
                    self.frames.append(("text", data))
                elif message.type == aiohttp.WSMsgType.BINARY:
                    self.binaries.append(message.data)
                    self.frames.append(("binary", message.data))
        finally:
            self.closed.set()

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 15.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for message in self.texts:
                if predicate(message):
                    return message
            await asyncio.sleep(0.01)
        raise TimeoutError(f"no matching message among {[m['type'] for m in self.texts]}")

    async def wait_done(self, prompt_id: str, within: float = 15.0) -> dict[str, Any]:
        return await self.wait_for(
            lambda m: (
                m["type"] == "executing"
                and m["data"].get("node") is None
                and m["data"].get("prompt_id") == prompt_id
            ),
            within,
        )

    async def close(self) -> None:
        await self.ws.close()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


class Comfy:
    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url.rstrip("/")
        self.http = http

    async def connect(self, client_id: str | None = None, flags: bool = False) -> Recorder:
        client_id = client_id or uuid.uuid4().hex
        ws_url = "ws" + self.url[len("http") :] + f"/ws?clientId={client_id}"
        ws = await self.http.ws_connect(ws_url)
        if flags:
            await ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
        recorder = Recorder(ws, client_id)
        recorder.task = asyncio.create_task(recorder._read())
        await recorder.wait_for(lambda m: m["type"] == "status")
        return recorder

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        async with self.http.request(method, self.url + path, **kwargs) as response:
            raw = await response.read()
            body: Any = raw
            if response.content_type == "application/json":
                body = json.loads(raw)
            elif response.content_type.startswith("text/"):
                body = raw.decode()
            return response.status, body, response

    async def get(self, path: str, **kwargs: Any) -> Any:
        status, body, _ = await self.request("GET", path, **kwargs)
        assert status == 200, (path, status, body)
        return body

    async def submit(
        self, prompt: dict[str, Any], client_id: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"prompt": prompt, **extra}
        if client_id is not None:
            payload["client_id"] = client_id
        status, body, _ = await self.request("POST", "/prompt", json=payload)
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    async def history(self, prompt_id: str) -> dict[str, Any]:
        body = await self.get(f"/history/{prompt_id}")
        return body.get(prompt_id, {})  # type: ignore[no-any-return]

    async def poll_history(self, prompt_id: str, within: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            entry = await self.history(prompt_id)
            if entry:
                return entry
            await asyncio.sleep(0.02)
        raise TimeoutError(prompt_id)


def basic_graph(prefix: str, color: int = 3368652, size: int = 64) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": size, "height": size, "batch_size": 1, "color": color},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def sleep_graph(steps: int, step_seconds: float, color: int = 4205977) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": color},
        },
        "2": {
            "class_type": "ProbeSleepProgress",
            "inputs": {"image": ["1", 0], "steps": steps, "step_seconds": step_seconds},
        },
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "probe/sleep"}},
    }
