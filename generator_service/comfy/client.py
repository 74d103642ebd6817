"""The HTTP side of one ComfyUI backend, over one long-lived ``aiohttp`` session.

Every call the generator makes to ComfyUI goes through here, so transport failures become one
exception type (:class:`BackendUnreachable`) that callers map to UNAVAILABLE, and a rejected
prompt becomes :class:`PromptRejected` carrying ComfyUI's parsed error body. No ``Origin`` header
is sent (ComfyUI's CSRF guard would answer 403 on a mismatch).

aiohttp, not httpx: a job makes several requests to its backend, and under load the requests
were the generator's largest CPU cost; one costs aiohttp about a tenth of what it costs httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)
"""What a request raises when the backend did not answer, or stopped answering mid-body."""


class BackendUnreachable(Exception):
    """The backend did not answer (connection refused, reset, timeout, 5xx)."""


class PromptRejected(Exception):
    """``POST /prompt`` refused the graph (400, or 200 with node errors)."""

    def __init__(self, body: dict[str, Any], queued: bool = False) -> None:
        super().__init__(str(body.get("error", {}).get("message", "prompt rejected")))
        self.body = body
        self.queued = queued
        """A 200 with node errors: ComfyUI queued the valid outputs and runs them anyway."""


@dataclass(frozen=True)
class QueueItem:
    number: float
    prompt_id: str


@dataclass(frozen=True)
class QueueState:
    running: tuple[QueueItem, ...]
    pending: tuple[QueueItem, ...]

    def contains(self, prompt_id: str) -> bool:
        return any(item.prompt_id == prompt_id for item in (*self.running, *self.pending))

    def position(self, prompt_id: str) -> int | None:
        """Jobs ahead of ``prompt_id`` (running ones included), None when it is not queued."""
        if any(item.prompt_id == prompt_id for item in self.running):
            return 0
        mine = next((item for item in self.pending if item.prompt_id == prompt_id), None)
        if mine is None:
            return None
        return len(self.running) + sum(1 for item in self.pending if item.number < mine.number)


@dataclass
class _HistoryDeletes:
    """Prompt ids whose history entries go in one ``POST /history``, and that request."""

    prompt_ids: list[str] = field(default_factory=list)
    sent: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class Answer:
    """A whole (small) answer of ComfyUI: its status and body."""

    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class ViewResponse:
    """An open ``GET /view`` answer: its status and headers are in, its body is read as it comes."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as the socket delivers it (not decoded: it is asked for uncompressed)."""
        return self._response.content.iter_any()


class ComfyClient:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        # Like a per-operation timeout: connecting (pool wait included) and each read are bounded,
        # a long download as a whole is not.
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._history_deletes: _HistoryDeletes | None = None
        self._history_delete_on_wire = asyncio.Lock()
        self._next_queue: asyncio.Task[QueueState] | None = None
        self._queue_on_wire = asyncio.Lock()

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        """The session, made on first use: aiohttp binds it to the running loop."""
        if self._closed:
            raise RuntimeError("client closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=15),
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
        return self._session

    async def _call(self, method: str, path: str, **kwargs: Any) -> Answer:
        try:
            async with self._http().request(method, self.base_url + path, **kwargs) as response:
                answer = Answer(response.status, await response.read())
        except (*TRANSPORT_ERRORS, RuntimeError) as exc:  # RuntimeError: client closed at shutdown
            raise BackendUnreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if answer.status_code >= 500:
            raise BackendUnreachable(f"{method} {path}: HTTP {answer.status_code}")
        return answer

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._call(method, path, **kwargs)
        if response.status_code != 200:
            raise BackendUnreachable(f"{method} {path}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise BackendUnreachable(f"{method} {path}: answer is not JSON") from exc

    async def system_stats(self) -> dict[str, Any]:
        return dict(await self._json("GET", "/system_stats"))

    async def object_info(self) -> dict[str, Any]:
        return dict(await self._json("GET", "/object_info"))

    async def submit(self, graph: dict[str, Any], client_id: str, prompt_id: str) -> int:
        """Queue the graph; returns ComfyUI's queue number."""
        body = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id}
        response = await self._call("POST", "/prompt", json=body)
        try:
            answer = response.json()
        except ValueError:
            answer = {"error": {"message": response.text[:200]}}
        if response.status_code != 200 or answer.get("node_errors"):
            body = answer if isinstance(answer, dict) else {}
            raise PromptRejected(body, queued=response.status_code == 200)
        return int(answer.get("number", 0))

    async def queue(self) -> QueueState:
        """ComfyUI's queue as it was at some moment after this call.

        Every ``status`` push (a prompt queued or started) makes each of our waiting jobs on
        the backend ask where it stands: with eight waiting, eight ``GET /queue`` per push,
        each answer the whole queue, which the backend builds and this process parses. Asks
        made while a look-up is on the wire therefore share the next one, which is sent once
        that look-up is answered, so each answer is still read after its ask.
        """
        lookup = self._next_queue
        if lookup is None:
            lookup = self._next_queue = asyncio.ensure_future(self._look_up_queue())
            lookup.add_done_callback(_retrieve)  # every waiter may have been cancelled
        return await asyncio.shield(lookup)

    async def _look_up_queue(self) -> QueueState:
        async with self._queue_on_wire:
            self._next_queue = None  # from here on, new asks wait for the next look-up
            data = await self._json("GET", "/queue")
        return QueueState(_items(data.get("queue_running", [])), _items(data.get("queue_pending", [])))

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The history entry of a prompt; None while it is pending, running, unknown or deleted."""
        data = await self._json("GET", f"/history/{prompt_id}")
        entry = data.get(prompt_id) if isinstance(data, dict) else None
        return entry if isinstance(entry, dict) else None

    async def delete_history(self, prompt_id: str) -> None:
        """Drop a prompt's history entry; raises :class:`BackendUnreachable` like the request.

        ComfyUI deletes a list of entries in one request, and each request costs this process
        more than the list's length does: while one delete is on the wire, the prompts that
        finish meanwhile wait for it and then go together in the next one. Alone, a delete is
        sent at once.
        """
        batch = self._history_deletes
        if batch is None or batch.sent is None:
            batch = self._history_deletes = _HistoryDeletes()
            batch.sent = asyncio.ensure_future(self._send_history_deletes(batch))
            batch.sent.add_done_callback(_retrieve)  # every waiter may have been cancelled
        batch.prompt_ids.append(prompt_id)
        await asyncio.shield(batch.sent)

    async def _send_history_deletes(self, batch: _HistoryDeletes) -> None:
        async with self._history_delete_on_wire:
            if self._history_deletes is batch:  # from here on, new deletes start the next batch
                self._history_deletes = None
            await self._call("POST", "/history", json={"delete": batch.prompt_ids})

    async def delete_queued(self, prompt_id: str) -> None:
        await self._call("POST", "/queue", json={"delete": [prompt_id]})

    async def interrupt(self, prompt_id: str) -> None:
        """Targeted interrupt: ComfyUI ignores it unless ``prompt_id`` is the one running."""
        await self._call("POST", "/interrupt", json={"prompt_id": prompt_id})

    async def upload_image(self, filename: str, data: bytes, subfolder: str = "") -> str:
        """Upload into ``input/<subfolder>``; returns the name to put in LoadImage (``subfolder/name``)."""
        form = aiohttp.FormData()
        form.add_field("image", data, filename=filename, content_type="application/octet-stream")
        form.add_field("type", "input")
        if subfolder:
            form.add_field("subfolder", subfolder)
        response = await self._call("POST", "/upload/image", data=form)
        if response.status_code != 200:
            raise PromptRejected({"error": {"message": f"upload refused: HTTP {response.status_code}"}})
        answer = response.json()
        name, subfolder = str(answer["name"]), str(answer.get("subfolder") or "")
        return f"{subfolder}/{name}" if subfolder else name

    @contextlib.asynccontextmanager
    async def view(self, filename: str, subfolder: str, kind: str) -> AsyncIterator[ViewResponse]:
        """An open streaming ``GET /view`` response (status not yet checked).

        The body is asked for uncompressed: it is read raw, and its length is checked against
        ``Content-Length``.
        """
        params = {"filename": filename, "subfolder": subfolder, "type": kind}
        headers = {"Accept-Encoding": "identity"}
        try:
            response = await self._http().get(self.base_url + "/view", params=params, headers=headers)
        except (*TRANSPORT_ERRORS, RuntimeError) as exc:
            raise BackendUnreachable(f"GET /view {filename}: {type(exc).__name__}: {exc}") from exc
        async with response:  # a body left unread closes the connection instead of reusing it
            yield ViewResponse(response)


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _items(raw: Any) -> tuple[QueueItem, ...]:
    items = []
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, list) and len(entry) >= 2:
            items.append(QueueItem(float(entry[0]), str(entry[1])))
    return tuple(items)
