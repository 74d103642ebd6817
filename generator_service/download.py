"""Stream one output file from ComfyUI's ``/view`` to the caller, chunk by chunk.

The body is read only as fast as the gRPC caller takes the chunks (each ``yield`` waits for the
stream's flow control), so memory stays flat whatever the file size. The byte count is checked
against ``Content-Length``: a short body is DATA_LOSS, never a silently truncated file. The
sha256 in ``media_end`` is of the bytes actually sent; it is the receiver's check that catches a
file ComfyUI corrupted (its length is right, its content is not, and only the receiver can tell).

A chunk event is written straight onto the wire: its tags and lengths in front of the socket reads
that make it up, joined once (:class:`EncodedChunk`, passed through by :func:`encode_event`, the
``Generate`` serializer). Joining the reads, setting ``data`` on a message and serializing it would
copy every byte three times, and the download of a large file is the generator's largest CPU cost.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import grpc

from generator_service.comfy.client import TRANSPORT_ERRORS, BackendUnreachable, ComfyClient, ViewResponse
from generator_service.comfy.outputs import OutputFile, media_kind
from mediagen.hashing import StreamHash
from mediagen.scaffold import ServiceError
from mediagen.scaffold.metrics import BYTES_STREAMED
from mediagen.v1 import generator_pb2


async def stream_output(
    client: ComfyClient, file: OutputFile, index: int, chunk_size: int, ids: dict[str, str]
) -> AsyncIterator[generator_pb2.GenerateEvent | EncodedChunk]:
    async with client.view(file.filename, file.subfolder, file.folder_type) as response:
        _check_status(response, file, ids)
        expected = int(response.headers.get("content-length", "0") or 0)
        yield _start(file, index, expected, response.headers.get("content-type", ""))
        digest, size = StreamHash(), 0
        try:
            async for pieces, length in _gathered(response.aiter_raw(), chunk_size):
                for piece in pieces:
                    await digest.update(piece)
                size += length
                BYTES_STREAMED.labels("generator", "out").inc(length)
                yield _chunk_event(index, pieces, length)
        except TRANSPORT_ERRORS as exc:
            raise _truncated(file, size, expected, ids, f"{type(exc).__name__}") from None
        if expected and size != expected:
            raise _truncated(file, size, expected, ids, "length mismatch")
    yield generator_pb2.GenerateEvent(
        media_end=generator_pb2.MediaEnd(index=index, size_bytes=size, sha256=await digest.hexdigest())
    )


async def _gathered(reads: AsyncIterable[bytes], chunk_size: int) -> AsyncIterator[tuple[list[bytes], int]]:
    """Socket reads grouped into chunks of at least ``chunk_size`` bytes (the last may be shorter).

    Whole reads, never cut: a chunk exceeds ``chunk_size`` by less than one read.
    """
    pieces: list[bytes] = []
    gathered = 0
    async for piece in reads:
        if not piece:
            continue
        pieces.append(piece)
        gathered += len(piece)
        if gathered >= chunk_size:
            yield pieces, gathered
            pieces, gathered = [], 0
    if gathered:
        yield pieces, gathered


@dataclass(frozen=True, slots=True)
class EncodedChunk:
    """A ``GenerateEvent`` holding one ``media_chunk``, already serialized."""

    wire: bytes


_MEDIA_CHUNK_TAG = b"\x22"  # GenerateEvent.media_chunk: field 4, length-delimited
_INDEX_TAG = b"\x08"  # MediaChunk.index: field 1, varint
_DATA_TAG = b"\x12"  # MediaChunk.data: field 2, length-delimited


def _chunk_event(index: int, pieces: list[bytes], length: int) -> EncodedChunk:
    """``GenerateEvent(media_chunk=MediaChunk(index=index, data=b"".join(pieces)))``, serialized."""
    data_field = _DATA_TAG + _varint(length)
    index_field = _INDEX_TAG + _varint(index) if index else b""
    inner = len(index_field) + len(data_field) + length
    head = _MEDIA_CHUNK_TAG + _varint(inner) + index_field + data_field
    return EncodedChunk(b"".join([head, *pieces]))


def encode_event(event: generator_pb2.GenerateEvent | EncodedChunk) -> bytes:
    """The ``Generate`` response serializer: chunk events arrive already encoded."""
    if isinstance(event, EncodedChunk):
        return event.wire
    return event.SerializeToString()


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _start(file: OutputFile, index: int, expected: int, content_type: str) -> generator_pb2.GenerateEvent:
    media_type, mime, fmt = media_kind(file.filename, file.animated)
    header_mime = content_type.split(";", 1)[0].strip()
    if mime == "application/octet-stream" and header_mime:
        mime = header_mime
    return generator_pb2.GenerateEvent(
        media_start=generator_pb2.MediaStart(
            index=index,
            media_type=media_type,
            mime_type=mime,
            format=fmt,
            filename=file.filename,
            node_id=file.node_id,
            expected_size=expected,
        )
    )


def _check_status(response: ViewResponse, file: OutputFile, ids: dict[str, str]) -> None:
    if response.status_code == 200:
        return
    if response.status_code >= 500:
        raise BackendUnreachable(f"GET /view {short_name(file.filename)}: HTTP {response.status_code}")
    name, node = short_name(file.filename), short_name(file.node_id)
    raise ServiceError(
        grpc.StatusCode.DATA_LOSS,
        f"output {name} of node {node} is listed in history but /view answered HTTP {response.status_code}",
        reason="OUTPUT_MISSING",
        metadata={**ids, "node_id": node, "filename": name},
    )


def short_name(text: str, limit: int = 120) -> str:
    """A backend-given name as far as a status may quote it (the backend chooses its length)."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def _truncated(file: OutputFile, size: int, expected: int, ids: dict[str, str], why: str) -> ServiceError:
    name, node = short_name(file.filename), short_name(file.node_id)
    return ServiceError(
        grpc.StatusCode.DATA_LOSS,
        f"download of {name} (node {node}) ended after {size} of {expected} bytes ({why})",
        reason="TRUNCATED_DOWNLOAD",
        metadata={
            **ids,
            "node_id": node,
            "filename": name,
            "received_bytes": str(size),
            "expected_bytes": str(expected),
        },
    )
