"""Media chunks relayed on the protobuf wire format, without building messages.

Nearly every byte the gateway relays arrives as ``GenerateEvent.media_chunk``
and leaves as ``PutMediaRequest.chunk``. Decoding each event into a message,
building a request around its data and serializing that again copies every
chunk three times, which made the gateway the CPU bottleneck of the pipeline.
Here a chunk event is recognised in its serialized bytes and its data is
returned as a view into them; the outgoing request is written as its tag and
length in front of that data, one copy in all. Anything that is not plainly a
chunk event, or that this reading cannot be sure of, is left to protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediagen.protowire import varint
from mediagen.v1 import generator_pb2, storage_pb2

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_EVENT_FIELDS = range(1, 8)  # the members of GenerateEvent's oneof
_MEDIA_CHUNK = 4
_CHUNK_INDEX, _CHUNK_DATA = 1, 2
_PUT_MEDIA_CHUNK_TAG = b"\x12"  # PutMediaRequest.chunk: field 2, length-delimited
_UINT32_MAX = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Chunk:
    """A ``media_chunk`` event; ``data`` is a view into the received message."""

    index: int
    data: memoryview


class _Unsure(Exception):
    """The bytes are not a plain chunk event; protobuf decides what they are."""


def decode_event(raw: bytes) -> Chunk | generator_pb2.GenerateEvent:
    """A chunk event as a :class:`Chunk`, every other event as a ``GenerateEvent``."""
    view = memoryview(raw)
    try:
        return _chunk_event(view)
    except _Unsure:
        return generator_pb2.GenerateEvent.FromString(raw)


def encode_request(part: bytes | storage_pb2.PutMediaRequest) -> bytes:
    """The request serializer of PutMedia: pre-encoded chunks pass through as they are."""
    if isinstance(part, bytes):
        return part
    return part.SerializeToString()


def encode_chunk(data: bytes | memoryview) -> bytes:
    """``PutMediaRequest(chunk=data)`` serialized, copying ``data`` once."""
    return b"".join((_PUT_MEDIA_CHUNK_TAG, varint(len(data)), data))


def _chunk_event(view: memoryview) -> Chunk:
    """The one ``media_chunk`` field of an event, which may also carry unknown fields."""
    chunk: memoryview | None = None
    pos = 0
    while pos < len(view):
        field, kind, pos = _tag(view, pos)
        if field in _EVENT_FIELDS:
            # Another oneof member, a repeated chunk (merged by protobuf) or a
            # wire type protobuf keeps as an unknown field: not a plain chunk.
            if field != _MEDIA_CHUNK or kind != _LEN or chunk is not None:
                raise _Unsure
            chunk, pos = _length_delimited(view, pos)
        else:
            pos = _skip(view, pos, kind)
    if chunk is None:
        raise _Unsure
    return _media_chunk(chunk)


def _media_chunk(view: memoryview) -> Chunk:
    index = 0
    data = view[:0]
    pos = 0
    while pos < len(view):
        field, kind, pos = _tag(view, pos)
        if field == _CHUNK_INDEX:
            if kind != _VARINT:
                raise _Unsure
            index, pos = _varint_at(view, pos)
            if index > _UINT32_MAX:
                raise _Unsure
        elif field == _CHUNK_DATA:
            if kind != _LEN:
                raise _Unsure
            data, pos = _length_delimited(view, pos)
        else:
            pos = _skip(view, pos, kind)
    return Chunk(index, data)


def _tag(view: memoryview, pos: int) -> tuple[int, int, int]:
    """(field number, wire type, next position) of the tag at ``pos``."""
    tag, pos = _varint_at(view, pos)
    field = tag >> 3
    if field == 0 or tag > _UINT32_MAX:
        raise _Unsure
    return field, tag & 7, pos


def _varint_at(view: memoryview, pos: int) -> tuple[int, int]:
    """(value, next position) of the varint at ``pos``, at most ten bytes."""
    value = 0
    for shift in range(0, 70, 7):
        if pos >= len(view):
            raise _Unsure
        byte = view[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >> 64:
                raise _Unsure
            return value, pos
    raise _Unsure


def _length_delimited(view: memoryview, pos: int) -> tuple[memoryview, int]:
    length, pos = _varint_at(view, pos)
    end = pos + length
    if end > len(view):
        raise _Unsure
    return view[pos:end], end


def _skip(view: memoryview, pos: int, kind: int) -> int:
    """The position after an unknown field's value; groups are left to protobuf."""
    if kind == _VARINT:
        return _varint_at(view, pos)[1]
    if kind == _LEN:
        return _length_delimited(view, pos)[1]
    width = {_I64: 8, _I32: 4}.get(kind)
    if width is None or pos + width > len(view):
        raise _Unsure
    return pos + width
