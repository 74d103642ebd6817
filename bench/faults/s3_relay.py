"""A loopback HTTP relay in front of a real MinIO that can lose or alter one kind of answer.

Requests and answers pass through byte for byte, one exchange at a time per
connection (minio-py never pipelines). Two faults can be switched on:

* a :class:`Strike` on the first request it matches: ``then`` runs (the
  fault suite and tests SIGKILL MinIO there) and the caller's connection is
  closed, either before the request reaches MinIO or, with ``answered``,
  after MinIO did it and answered, the answer never delivered (MinIO dying
  between doing a request and answering it);
* ``ignore_if_none_match``: a ``412 Precondition Failed`` to a PUT reaches the
  caller as ``200 OK``, as from an S3 server that does not honour
  ``If-None-Match: *``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

Match = Callable[[str, str], bool]  # (method, path with query) -> strike here?


@dataclass
class Exchange:
    method: str
    target: str
    status: int


@dataclass
class Strike:
    matches: Match
    answered: bool
    then: Callable[[], None]


@dataclass
class S3Relay:
    upstream: str  # host:port of MinIO
    strike: Strike | None = None
    ignore_if_none_match: bool = False
    struck: list[Exchange] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        host, port = self.upstream.rsplit(":", 1)
        try:
            up_in, up_out = await asyncio.open_connection(host, int(port))
        except OSError:
            client_out.close()
            return
        try:
            while True:
                head = await _next_request(client_in, up_in)
                if head is None:
                    return
                method, target = (part.decode() for part in head.split(b" ", 2)[:2])
                request = head + await _body(client_in, head, method)
                strike = self.strike if self.strike and self.strike.matches(method, target) else None
                if strike is not None and not strike.answered:
                    self._strike(strike, Exchange(method, target, 0))
                    return
                up_out.write(request)
                await up_out.drain()
                answer = await _head(up_in)
                if answer is None:
                    return
                body = await _body(up_in, answer, method, response=True)
                status = int(answer.split(b" ", 2)[1])
                if strike is not None:
                    self._strike(strike, Exchange(method, target, status))
                    return
                if self.ignore_if_none_match and method == "PUT" and status == 412:
                    answer = answer.replace(b"412 Precondition Failed", b"200 OK", 1)
                client_out.write(answer + body)
                await client_out.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            for writer in (client_out, up_out):
                writer.close()

    def _strike(self, strike: Strike, exchange: Exchange) -> None:
        self.struck.append(exchange)
        self.strike = None
        strike.then()


async def _next_request(client: asyncio.StreamReader, upstream: asyncio.StreamReader) -> bytes | None:
    """The next request's head; None when the caller left or MinIO closed (as the caller would see)."""
    head = asyncio.ensure_future(_head(client))
    gone = asyncio.ensure_future(upstream.read(1))
    try:
        await asyncio.wait({head, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (head, gone):
            task.cancel()
        await asyncio.gather(head, gone, return_exceptions=True)  # both readers free again
    return head.result() if not head.cancelled() else None


async def _head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


async def _body(reader: asyncio.StreamReader, head: bytes, method: str, response: bool = False) -> bytes:
    if response:
        status = int(head.split(b" ", 2)[1])
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return b""
    if (_header(head, b"transfer-encoding") or b"").lower() == b"chunked":
        return await _chunked(reader)
    length = _header(head, b"content-length")
    return await reader.readexactly(int(length)) if length else b""


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        out += size_line
        size = int(size_line.split(b";")[0], 16)
        out += await reader.readexactly(size + 2)
        if size == 0:
            return bytes(out)
