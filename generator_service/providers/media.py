"""Outputs a provider gives as URLs, downloaded as a stream; and the media part of a job's stream.

:func:`download` reads an output URL piece by piece (no key: it is another host) and checks the
byte count against ``Content-Length``, so a cut-off download is DATA_LOSS, never a short file.
:class:`MediaWriter` turns ``MediaBegin``/``MediaBytes``/``MediaDone`` into ``media_start``,
``media_chunk``* and ``media_end`` (size and sha256 of the bytes sent), joining pieces into chunks
of at least the configured size, exactly as the ComfyUI path does.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import AsyncIterator

import grpc
import httpx

from generator_service.providers.base import MediaBegin, MediaBytes, MediaDone, RunEvent
from generator_service.providers.http import ProviderHttp, unavailable
from generator_service.providers.request_ids import RequestIds
from mediagen.scaffold import ServiceError
from mediagen.scaffold.metrics import BYTES_STREAMED
from mediagen.v1 import common_pb2, generator_pb2

_KINDS = {
    "image": common_pb2.MEDIA_TYPE_IMAGE,
    "audio": common_pb2.MEDIA_TYPE_AUDIO,
    "video": common_pb2.MEDIA_TYPE_VIDEO,
}


async def download(http: ProviderHttp, url: str, filename: str, ids: RequestIds) -> AsyncIterator[RunEvent]:
    async with http.get_unauthenticated(url, ids) as response:
        if response.status_code >= 500:
            raise unavailable(f"GET output {filename}: HTTP {response.status_code}", ids)
        if response.status_code != 200:
            raise ServiceError(
                grpc.StatusCode.DATA_LOSS,
                f"output {filename} is listed by the provider but its URL answered "
                f"HTTP {response.status_code}",
                "OUTPUT_MISSING",
                ids.metadata(filename=filename),
            )
        expected = int(response.headers.get("content-length", "0") or 0)
        mime = response.headers.get("content-type", "").split(";", 1)[0].strip()
        name = _named(filename, url, mime)
        mime = mime or mimetypes.guess_type(name)[0] or "application/octet-stream"
        fmt = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        yield MediaBegin(
            name,
            mime,
            "jpeg" if fmt == "jpg" else fmt,
            _KINDS.get(mime.split("/", 1)[0], common_pb2.MEDIA_TYPE_OTHER),
            expected,
        )
        size = 0
        try:
            async for piece in response.aiter_raw():
                size += len(piece)
                yield MediaBytes(piece)
        except httpx.HTTPError as exc:
            raise truncated(name, size, expected, ids, type(exc).__name__) from None
        if expected and size != expected:
            raise truncated(name, size, expected, ids, "length mismatch")
        yield MediaDone()


def _named(filename: str, url: str, mime: str) -> str:
    """The job's file name with the extension of what was actually served."""
    tail = url.rsplit("?", 1)[0].rsplit("/", 1)[-1]
    extension = (
        tail.rsplit(".", 1)[-1] if "." in tail else (mimetypes.guess_extension(mime) or ".bin").lstrip(".")
    )
    return f"{filename.rsplit('.', 1)[0]}.{extension}"


def truncated(name: str, size: int, expected: int, ids: RequestIds, why: str) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.DATA_LOSS,
        f"download of {name} ended after {size} of {expected or 'unknown'} bytes ({why})",
        "TRUNCATED_DOWNLOAD",
        ids.metadata(filename=name, received_bytes=str(size), expected_bytes=str(expected)),
    )


class MediaWriter:
    """The media events of one job; indexes count its items from 0."""

    def __init__(self, chunk_size: int) -> None:
        self._chunk_size = chunk_size
        self.count = 0
        self._digest = hashlib.sha256()
        self._size = 0
        self._pieces: list[bytes] = []
        self._gathered = 0
        self._open = False

    def begin(self, event: MediaBegin) -> generator_pb2.GenerateEvent:
        self._digest, self._size, self._open = hashlib.sha256(), 0, True
        return generator_pb2.GenerateEvent(
            media_start=generator_pb2.MediaStart(
                index=self.count,
                media_type=event.media_type,  # type: ignore[arg-type]
                mime_type=event.mime_type,
                format=event.format,
                filename=event.filename,
                expected_size=event.expected_size,
            )
        )

    def add(self, event: MediaBytes) -> generator_pb2.GenerateEvent | None:
        """A chunk once at least ``chunk_size`` bytes have gathered, else None."""
        self._pieces.append(event.data)
        self._gathered += len(event.data)
        return self._flush() if self._gathered >= self._chunk_size else None

    def end(self, event: MediaDone) -> list[generator_pb2.GenerateEvent]:
        events = [chunk] if (chunk := self._flush()) is not None else []
        events.append(
            generator_pb2.GenerateEvent(
                media_end=generator_pb2.MediaEnd(
                    index=self.count, size_bytes=self._size, sha256=self._digest.hexdigest()
                )
            )
        )
        self.count += 1
        self._open = False
        return events

    def _flush(self) -> generator_pb2.GenerateEvent | None:
        if not self._gathered:
            return None
        data = b"".join(self._pieces) if len(self._pieces) > 1 else self._pieces[0]
        self._pieces, self._gathered = [], 0
        self._digest.update(data)
        self._size += len(data)
        BYTES_STREAMED.labels("generator", "out").inc(len(data))
        event = generator_pb2.GenerateEvent()
        event.media_chunk.index = self.count
        event.media_chunk.data = data
        return event
