"""Stream one output file from ComfyUI's ``/view`` to the caller, chunk by chunk.

A file ComfyUI announces at one chunk or less goes as one ``media_whole`` event; any other as
``media_start``, ``media_chunk``* and ``media_end``, its body read only as fast as the gRPC
caller takes the chunks (each ``yield`` waits for the stream's flow control), so memory stays
flat whatever the file size. The byte count is checked
against ``Content-Length``: a short body is DATA_LOSS, never a silently truncated file. The
sha256 in ``media_end`` is of the bytes actually sent; it is the receiver's check that catches a
file ComfyUI corrupted (its length is right, its content is not, and only the receiver can tell).

A chunk event is written straight onto the wire (see :mod:`generator_service.wire`): joining the
reads, setting ``data`` on a message and serializing it would copy every byte three times, and
the download of a large file is the generator's largest CPU cost.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

import grpc

from generator_service.comfy.client import TRANSPORT_ERRORS, BackendUnreachable, ComfyClient, ViewResponse
from generator_service.comfy.outputs import OutputFile
from generator_service.job_ids import JobIds
from generator_service.media_types import media_kind
from generator_service.wire import OutEvent, chunk_event
from mediagen.hashing import StreamHash
from mediagen.scaffold import ServiceError
from mediagen.scaffold.metrics import BYTES_STREAMED
from mediagen.v1 import generator_pb2


async def stream_output(
    client: ComfyClient, file: OutputFile, index: int, chunk_size: int, ids: JobIds
) -> AsyncIterator[OutEvent]:
    async with client.view(file.filename, file.subfolder, file.folder_type) as response:
        _check_status(response, file, ids)
        expected = int(response.headers.get("content-length", "0") or 0)
        start = _start(file, index, expected, response.headers.get("content-type", ""))
        if 0 < expected <= chunk_size:
            yield await _whole(response, file, start, expected, ids)
            return
        yield generator_pb2.GenerateEvent(media_start=start)
        digest, size = StreamHash(), 0
        try:
            async for pieces, length in _gathered(response.aiter_raw(), chunk_size):
                for piece in pieces:
                    await digest.update(piece)
                size += length
                BYTES_STREAMED.labels("generator", "out").inc(length)
                yield chunk_event(index, pieces, length)
        except TRANSPORT_ERRORS as exc:
            raise _truncated(file, size, expected, ids, f"{type(exc).__name__}") from None
        if expected and size != expected:
            raise _truncated(file, size, expected, ids, "length mismatch")
    yield generator_pb2.GenerateEvent(
        media_end=generator_pb2.MediaEnd(index=index, size_bytes=size, sha256=await digest.hexdigest())
    )


async def _whole(
    response: ViewResponse,
    file: OutputFile,
    start: generator_pb2.MediaStart,
    expected: int,
    ids: JobIds,
) -> generator_pb2.GenerateEvent:
    """A file announced at one chunk or less, read whole and sent as one ``media_whole``.

    Three messages (start, chunk, end) cost each hop more than the bytes of a small file do.
    The body is read up to one byte past its announced size, so a lying backend cannot make
    this grow; a body of another length is DATA_LOSS before anything was sent.
    """
    pieces: list[bytes] = []
    size = 0
    try:
        async for piece in response.aiter_raw():
            pieces.append(piece)
            size += len(piece)
            if size > expected:
                break
    except TRANSPORT_ERRORS as exc:
        raise _truncated(file, size, expected, ids, f"{type(exc).__name__}") from None
    if size != expected:
        raise _truncated(file, size, expected, ids, "length mismatch")
    data = b"".join(pieces) if len(pieces) > 1 else pieces[0]
    BYTES_STREAMED.labels("generator", "out").inc(size)
    event = generator_pb2.GenerateEvent()
    whole = event.media_whole
    whole.start.CopyFrom(start)
    whole.data = data
    whole.sha256 = hashlib.sha256(data).hexdigest()
    return event


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


def _start(file: OutputFile, index: int, expected: int, content_type: str) -> generator_pb2.MediaStart:
    media_type, mime, fmt = media_kind(file.filename, file.animated, served=content_type)
    return generator_pb2.MediaStart(
        index=index,
        media_type=media_type,
        mime_type=mime,
        format=fmt,
        filename=file.filename,
        node_id=file.node_id,
        expected_size=expected,
    )


def _check_status(response: ViewResponse, file: OutputFile, ids: JobIds) -> None:
    if response.status_code == 200:
        return
    if response.status_code >= 500:
        raise BackendUnreachable(f"GET /view {short_name(file.filename)}: HTTP {response.status_code}")
    name, node = short_name(file.filename), short_name(file.node_id)
    raise ServiceError(
        grpc.StatusCode.DATA_LOSS,
        f"output {name} of node {node} is listed in history but /view answered HTTP {response.status_code}",
        reason="OUTPUT_MISSING",
        metadata=ids.metadata(node_id=node, filename=name),
    )


def short_name(text: str, limit: int = 120) -> str:
    """A backend-given name as far as a status may quote it (the backend chooses its length)."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def _truncated(file: OutputFile, size: int, expected: int, ids: JobIds, why: str) -> ServiceError:
    name, node = short_name(file.filename), short_name(file.node_id)
    return ServiceError(
        grpc.StatusCode.DATA_LOSS,
        f"download of {name} (node {node}) ended after {size} of {expected} bytes ({why})",
        reason="TRUNCATED_DOWNLOAD",
        metadata=ids.metadata(
            node_id=node, filename=name, received_bytes=str(size), expected_bytes=str(expected)
        ),
    )
