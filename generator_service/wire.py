"""Generate events written straight onto the wire.

Nearly every event of a large download is a ``media_chunk``. Building it as a message would
join the socket reads, copy them into the message and copy them again to serialize it; a
chunk event is instead its tags and lengths in front of the reads, joined once
(:class:`EncodedChunk`). :func:`encode_event` is the ``Generate`` method's serializer: it
passes those through and serializes every other event as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediagen.protowire import varint
from mediagen.v1 import generator_pb2


@dataclass(frozen=True, slots=True)
class EncodedChunk:
    """A ``GenerateEvent`` holding one ``media_chunk``, already serialized."""

    wire: bytes


_MEDIA_CHUNK_TAG = b"\x22"  # GenerateEvent.media_chunk: field 4, length-delimited
_INDEX_TAG = b"\x08"  # MediaChunk.index: field 1, varint
_DATA_TAG = b"\x12"  # MediaChunk.data: field 2, length-delimited


def chunk_event(index: int, pieces: list[bytes], length: int) -> EncodedChunk:
    """``GenerateEvent(media_chunk=MediaChunk(index=index, data=b"".join(pieces)))``, serialized."""
    data_field = _DATA_TAG + varint(length)
    index_field = _INDEX_TAG + varint(index) if index else b""
    inner = len(index_field) + len(data_field) + length
    head = _MEDIA_CHUNK_TAG + varint(inner) + index_field + data_field
    return EncodedChunk(b"".join([head, *pieces]))


def encode_event(event: generator_pb2.GenerateEvent | EncodedChunk) -> bytes:
    """The ``Generate`` response serializer: chunk events arrive already encoded."""
    if isinstance(event, EncodedChunk):
        return event.wire
    return event.SerializeToString()


OutEvent = generator_pb2.GenerateEvent | EncodedChunk
"""What a job sends its caller: an event message, or a chunk event already serialized."""
