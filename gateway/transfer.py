"""Turns one generator stream's events into caller events and stored media.

``accepted`` and ``progress`` are relayed; ``media_start`` (once the run exists in
storage) opens a PutMedia call whose header says where the file belongs, ``media_chunk`` (a
:class:`~gateway.wire.Chunk` on the fast path) feeds it,
``media_end`` closes it with the trailer and checks the record storage
returns against what the generator sent; a ``media_whole`` (a file of one
chunk) does all three and reaches storage as one ``whole`` message. Transfer
time is measured here, from the first byte of the first file to the last record.

Each generator event gives at most one caller event, returned by
:meth:`OutputTransfer.handle` for the output to pass on; where the stream is
(:class:`Stage`) is one explicit state.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Mapping

import grpc
from google.protobuf import duration_pb2

from gateway.peers import PutMedia
from gateway.settings import GatewaySettings
from gateway.upload import MediaUpload, WholeUpload
from gateway.wire import Chunk
from mediagen.scaffold.errors import ServiceError
from mediagen.scaffold.metrics import BYTES_STREAMED, STAGE_DURATION
from mediagen.v1 import common_pb2, gateway_pb2, generator_pb2, storage_pb2


class Stage(enum.Enum):
    """Where one output's generator stream is; only the generator's events move it on."""

    WAITING = "waiting"
    """Nothing accepted yet: a refusal before start may be asked again."""
    ACCEPTED = "accepted"
    """The job is queued or running, and no file is open."""
    IN_FILE = "in_file"
    """A file's upload is open: its chunks go on, its end closes it."""
    COMPLETED = "completed"
    """The job said it is complete: the stream may end."""


class OutputTransfer:
    def __init__(
        self,
        *,
        put_media: PutMedia,
        settings: GatewaySettings,
        run_id: str,
        index: int,
        created: asyncio.Future[storage_pb2.Run],
        stored: Mapping[tuple[int, int], storage_pb2.MediaRecord] | None = None,
    ) -> None:
        self._put_media = put_media
        self._stored = stored or {}
        self._created = created
        self._depth = settings.queue_depth
        self._run_id = run_id
        self._index = index
        self._stage = Stage.WAITING
        self.accepted: generator_pb2.Accepted | None = None
        self.completed: generator_pb2.Completed | None = None
        self.media_ids: list[str] = []
        self.bytes_stored = 0
        self._upload: MediaUpload | WholeUpload | _StoredItem | None = None
        self._item = 0
        self._transfer_started: float | None = None
        self._transfer_seconds = 0.0

    async def handle(
        self, event: Chunk | generator_pb2.GenerateEvent, time_left: float
    ) -> gateway_pb2.GatewayEvent | None:
        """Move one generator event on; returns the caller's event it makes, if any."""
        if isinstance(event, Chunk):
            await self._current(event.index).send(event.data)
            return None
        kind = event.WhichOneof("event")
        if kind == "accepted":
            self.accepted = event.accepted
            if self._stage is Stage.WAITING:
                self._stage = Stage.ACCEPTED
            return gateway_pb2.GatewayEvent(
                output_accepted=gateway_pb2.OutputAccepted(output_index=self._index, accepted=event.accepted)
            )
        if kind == "progress":
            return gateway_pb2.GatewayEvent(
                output_progress=gateway_pb2.OutputProgress(output_index=self._index, progress=event.progress)
            )
        if kind == "media_start":
            await self._start(event.media_start, time_left)
        elif kind == "media_chunk":
            await self._current(event.media_chunk.index).send(event.media_chunk.data)
        elif kind == "media_end":
            return await self._end(event.media_end)
        elif kind == "media_whole":
            whole = event.media_whole
            await self._start(whole.start, time_left, whole)
            end = generator_pb2.MediaEnd(
                index=whole.start.index, size_bytes=len(whole.data), sha256=whole.sha256
            )
            return await self._end(end)
        elif kind == "completed":
            if self._stage is Stage.IN_FILE:
                raise self._truncated(f"the generator completed the job with item {self._item} unfinished")
            self.completed = event.completed
            self._stage = Stage.COMPLETED
        return None

    @property
    def stage(self) -> Stage:
        return self._stage

    async def abort(self) -> None:
        if self._upload is not None:
            await self._upload.abort()
            self._upload = None
        if self._stage is Stage.IN_FILE:
            self._stage = Stage.ACCEPTED

    def check_complete(self) -> None:
        """A stream that ended without ``completed`` (or inside a file) lost media."""
        if self._stage is not Stage.COMPLETED:
            raise self._truncated("the generator's stream ended before the job was complete")

    def _truncated(self, message: str) -> ServiceError:
        """Media was lost on the way: the output fails rather than store part of what was made."""
        return ServiceError(
            grpc.StatusCode.DATA_LOSS,
            message,
            "GENERATOR_STREAM_TRUNCATED",
            {"item_index": str(self._item)},
        )

    def timings(self, total: float) -> common_pb2.Timings:
        timings = common_pb2.Timings(total=_duration(total), transfer=_duration(self._transfer_seconds))
        if self.completed is not None:
            timings.queue_wait.CopyFrom(self.completed.timings.queue_wait)
            timings.execution.CopyFrom(self.completed.timings.execution)
        return timings

    async def _start(
        self, start: generator_pb2.MediaStart, time_left: float, whole: generator_pb2.MediaWhole | None = None
    ) -> None:
        await self.abort()
        await asyncio.shield(self._created)
        self._item = start.index
        self._transfer_started = time.monotonic()
        self._upload = self._open(start, time_left, whole)
        self._stage = Stage.IN_FILE

    def _open(
        self, start: generator_pb2.MediaStart, time_left: float, whole: generator_pb2.MediaWhole | None
    ) -> MediaUpload | WholeUpload | _StoredItem:
        already = self._stored.get((self._index, start.index))
        if already is not None:
            # A resumed run: the first attempt stored this item; the first copy stands.
            return _StoredItem(already)
        header = storage_pb2.MediaHeader(
            run_id=self._run_id,
            output_index=self._index,
            item_index=start.index,
            media_type=start.media_type,
            config_name=self._config_name(),
            format_hint=start.format,
            backend=self.accepted.backend if self.accepted else "",
            idempotency_key=f"{self._run_id}.{self._index}.{start.index}",
            original_filename=start.filename,
            metadata=self._metadata(start),
        )
        if whole is None:
            return MediaUpload(self._put_media, header, self._depth, time_left)
        trailer = storage_pb2.MediaTrailer(size_bytes=len(whole.data), sha256=whole.sha256)
        one = storage_pb2.PutMediaRequest(
            whole=storage_pb2.WholeMedia(header=header, data=whole.data, trailer=trailer)
        )
        return WholeUpload(self._put_media, one, time_left)

    async def _end(self, end: generator_pb2.MediaEnd) -> gateway_pb2.GatewayEvent:
        upload = self._current(end.index)
        record = await upload.finish(end.size_bytes, end.sha256)
        self._upload = None
        self._stage = Stage.ACCEPTED
        if self._transfer_started is not None:
            took = time.monotonic() - self._transfer_started
            self._transfer_seconds += took
            STAGE_DURATION.labels("gateway", "store").observe(took)
        BYTES_STREAMED.labels("gateway", "piped").inc(end.size_bytes)
        self.bytes_stored += end.size_bytes
        stored = record.descriptor
        kept = isinstance(upload, _StoredItem)
        if not kept and (stored.sha256 != end.sha256 or stored.size_bytes != end.size_bytes):
            raise ServiceError(
                grpc.StatusCode.DATA_LOSS,
                f"stored media {record.media_id} differs from what was generated",
                "CHECKSUM_MISMATCH",
                {"media_id": record.media_id, "expected_sha256": end.sha256, "stored_sha256": stored.sha256},
            )
        self.media_ids.append(record.media_id)
        return gateway_pb2.GatewayEvent(
            media_stored=gateway_pb2.MediaStored(output_index=self._index, record=record)
        )

    def _current(self, item: int) -> MediaUpload | WholeUpload | _StoredItem:
        if self._upload is None or item != self._item:
            raise ServiceError(
                grpc.StatusCode.INTERNAL,
                f"generator sent item {item} out of order",
                "STREAM_OUT_OF_ORDER",
                {"item_index": str(item)},
            )
        return self._upload

    def _config_name(self) -> str:
        if self.accepted and self.accepted.template:
            return self.accepted.template
        return "raw_graph"

    def _metadata(self, start: generator_pb2.MediaStart) -> dict[str, str]:
        metadata = {"node_id": start.node_id, "mime_type": start.mime_type}
        if self.accepted:
            metadata.update(prompt_id=self.accepted.prompt_id, seed=str(self.accepted.seed))
        return {key: value for key, value in metadata.items() if value}


class _StoredItem:
    """An item already stored by an earlier attempt: its bytes are read and dropped."""

    def __init__(self, record: storage_pb2.MediaRecord) -> None:
        self._record = record

    async def send(self, data: bytes | memoryview) -> None:
        return None

    async def finish(self, size: int, sha256: str) -> storage_pb2.MediaRecord:
        return self._record

    async def abort(self) -> None:
        return None


def _duration(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(value * 1e9))
    return duration
