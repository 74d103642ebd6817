"""The minimal one-process script the services are measured against.

It does the same job with nothing in between: submit a graph to ComfyUI,
wait for its completion push on the WebSocket, read the history, download the
output and put it into MinIO. Whatever the stack takes beyond this is the
price of its services, and that is what the overhead target bounds.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid

import httpx
import websockets
from minio import Minio


def solid_image_graph(width: int, height: int, prefix: str) -> dict[str, object]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": width, "height": height, "batch_size": 1, "color": 0},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


class DirectPipeline:
    """ComfyUI → MinIO in one process, one WebSocket and one HTTP client kept open."""

    def __init__(self, comfyui_url: str, minio: Minio, bucket: str) -> None:
        self.url = comfyui_url
        self.minio = minio
        self.bucket = bucket
        self.client_id = uuid.uuid4().hex
        self.http = httpx.AsyncClient(base_url=comfyui_url, timeout=30)
        self.ws: websockets.ClientConnection | None = None

    async def open(self) -> None:
        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        self.ws = await websockets.connect(ws_url, max_size=None)

    async def close(self) -> None:
        if self.ws:
            await self.ws.close()
        await self.http.aclose()

    async def run_once(self, width: int, height: int) -> int:
        """One job end to end; returns the stored size."""
        assert self.ws is not None
        prompt_id = uuid.uuid4().hex
        graph = solid_image_graph(width, height, f"baseline/{prompt_id}")
        body = {"prompt": graph, "client_id": self.client_id, "prompt_id": prompt_id}
        (await self.http.post("/prompt", json=body)).raise_for_status()
        await self._wait_done(prompt_id)
        history = (await self.http.get(f"/history/{prompt_id}")).json()[prompt_id]
        image = history["outputs"]["2"]["images"][0]
        params = {"filename": image["filename"], "subfolder": image["subfolder"], "type": image["type"]}
        data = (await self.http.get("/view", params=params)).content
        await asyncio.to_thread(
            self.minio.put_object,
            self.bucket,
            f"baseline/{prompt_id}.png",
            io.BytesIO(data),
            len(data),
            content_type="image/png",
        )
        await self.http.post("/history", json={"delete": [prompt_id]})
        return len(data)

    async def _wait_done(self, prompt_id: str) -> None:
        assert self.ws is not None
        async for raw in self.ws:
            if isinstance(raw, bytes):
                continue
            message = json.loads(raw)
            data = message.get("data", {})
            if (
                message.get("type") == "executing"
                and data.get("node") is None
                and data.get("prompt_id") == prompt_id
            ):
                return
        raise ConnectionError("ComfyUI closed the WebSocket")
