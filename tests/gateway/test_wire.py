"""The wire-level chunk codec agrees with protobuf on every input it accepts.

Each case is checked against protobuf itself: an event read as a chunk must be
exactly what ``GenerateEvent.FromString`` makes of it, and anything else must
come back as protobuf's own message.
"""

from __future__ import annotations

import os
import random

import pytest
from google.protobuf.message import DecodeError

from gateway import wire
from mediagen.v1 import generator_pb2, storage_pb2

LENGTHS = (0, 1, 127, 128, 129, 16383, 16384, 16385, 2 * 1024 * 1024)
INDEXES = (0, 1, 127, 128, 2**31, 2**32 - 1)


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number: int, kind: int, payload: bytes) -> bytes:
    tag = varint(number << 3 | kind)
    if kind == 2:
        return tag + varint(len(payload)) + payload
    return tag + payload


def chunk_event(index: int, data: bytes) -> bytes:
    return generator_pb2.GenerateEvent(
        media_chunk=generator_pb2.MediaChunk(index=index, data=data)
    ).SerializeToString()


def assert_matches_protobuf(raw: bytes) -> wire.Chunk:
    """``raw`` decodes as a chunk, and to what protobuf decodes it to."""
    decoded = wire.decode_event(raw)
    expected = generator_pb2.GenerateEvent.FromString(raw)
    assert isinstance(decoded, wire.Chunk)
    assert expected.WhichOneof("event") == "media_chunk"
    assert decoded.index == expected.media_chunk.index
    assert bytes(decoded.data) == expected.media_chunk.data
    return decoded


def assert_falls_back(raw: bytes) -> None:
    decoded = wire.decode_event(raw)
    assert isinstance(decoded, generator_pb2.GenerateEvent)
    assert decoded == generator_pb2.GenerateEvent.FromString(raw)


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("index", INDEXES)
def test_chunk_events_are_read_in_place(index: int, length: int) -> None:
    data = os.urandom(length)
    raw = chunk_event(index, data)
    decoded = assert_matches_protobuf(raw)
    assert decoded.index == index
    assert decoded.data.obj is raw  # a view, not a copy
    assert decoded.data.tobytes() == data


def test_fields_in_any_order_with_unknown_fields() -> None:
    data = os.urandom(300)
    unknown = (
        field(9, 0, varint(2**63))
        + field(10, 1, b"\x01" * 8)
        + field(11, 2, b"ignored")
        + field(12, 5, b"\x02" * 4)
        + field(2**29 - 1, 0, varint(7))
    )
    inner_orders = (
        field(1, 0, varint(42)) + field(2, 2, data),
        field(2, 2, data) + field(1, 0, varint(42)),
        unknown + field(2, 2, data) + unknown + field(1, 0, varint(42)) + unknown,
        field(2, 2, b"stale") + field(1, 0, varint(7)) + field(2, 2, data) + field(1, 0, varint(42)),
    )
    for inner in inner_orders:
        for raw in (field(4, 2, inner), unknown + field(4, 2, inner), field(4, 2, inner) + unknown):
            decoded = assert_matches_protobuf(raw)
            assert (decoded.index, bytes(decoded.data)) == (42, data)


def test_missing_fields_are_defaults() -> None:
    assert_matches_protobuf(field(4, 2, b""))
    assert_matches_protobuf(field(4, 2, field(1, 0, varint(5))))
    assert_matches_protobuf(field(4, 2, field(2, 2, b"abc")))
    # A non-minimal varint is still the same number.
    assert_matches_protobuf(field(4, 2, field(1, 0, b"\x85\x80\x00")))


@pytest.mark.parametrize(
    "event",
    [
        generator_pb2.GenerateEvent(),
        generator_pb2.GenerateEvent(accepted=generator_pb2.Accepted(prompt_id="p", seed=-1)),
        generator_pb2.GenerateEvent(media_start=generator_pb2.MediaStart(index=3, format="png")),
        generator_pb2.GenerateEvent(media_end=generator_pb2.MediaEnd(index=1, size_bytes=9, sha256="ab")),
        generator_pb2.GenerateEvent(completed=generator_pb2.Completed(prompt_id="p", media_count=2)),
    ],
)
def test_other_events_are_protobuf_messages(event: generator_pb2.GenerateEvent) -> None:
    assert_falls_back(event.SerializeToString())


def test_anything_uncertain_is_left_to_protobuf() -> None:
    chunk = field(1, 0, varint(3)) + field(2, 2, b"data")
    start = generator_pb2.MediaStart(index=1).SerializeToString()
    cases = [
        field(4, 2, chunk) + field(4, 2, field(1, 0, varint(4))),  # chunks merged by protobuf
        field(3, 2, start) + field(4, 2, chunk),  # another oneof member first
        field(4, 2, chunk) + field(5, 2, b""),  # and after
        field(4, 0, varint(1)),  # a known field with the wrong wire type
        field(4, 2, field(1, 0, varint(2**32))),  # index beyond uint32
        field(4, 2, field(1, 2, b"x")),
        field(4, 2, field(2, 0, varint(1))),
        field(4, 2, chunk + field(15, 3, b"") + field(15, 4, b"")),  # a group
        field(9, 3, b"") + field(9, 4, b"") + field(4, 2, chunk),
    ]
    for raw in cases:
        assert_falls_back(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x22",  # a tag with no length
        b"\x22\x05abc",  # a length past the end
        b"\x22\x80",  # a truncated varint
        b"\x22" + b"\xff" * 11,  # a varint longer than ten bytes
        b"\x00\x00",  # field number zero
        field(4, 2, b"\x12\x09short"),
        field(4, 2, b"\x08"),
        field(9, 1, b"\x00" * 3),  # a fixed64 cut short
        field(9, 5, b"\x00") + field(4, 2, b""),
    ],
)
def test_malformed_events_fail_as_protobuf_does(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        generator_pb2.GenerateEvent.FromString(raw)
    with pytest.raises(DecodeError):
        wire.decode_event(raw)


def test_random_events_agree_with_protobuf() -> None:
    rng = random.Random(1234)
    for _ in range(500):
        data = rng.randbytes(rng.choice((0, 1, rng.randrange(2, 20000))))
        index = rng.choice((0, rng.randrange(2**32)))
        inner = [field(1, 0, varint(index)), field(2, 2, data)]
        if rng.random() < 0.5:
            inner.append(field(rng.randrange(3, 1000), 2, rng.randbytes(rng.randrange(10))))
        rng.shuffle(inner)
        outer = [field(4, 2, b"".join(inner))]
        if rng.random() < 0.3:
            outer.append(field(rng.randrange(7, 1000), 0, varint(rng.randrange(2**64))))
        rng.shuffle(outer)
        decoded = assert_matches_protobuf(b"".join(outer))
        assert (decoded.index, bytes(decoded.data)) == (index, data)


@pytest.mark.parametrize("length", LENGTHS)
def test_encoded_chunk_is_the_protobuf_request(length: int) -> None:
    data = os.urandom(length)
    expected = storage_pb2.PutMediaRequest(chunk=data)
    for given in (data, memoryview(data), memoryview(b"xx" + data + b"yy")[2 : 2 + length]):
        encoded = wire.encode_chunk(given)
        assert encoded == expected.SerializeToString()
        assert storage_pb2.PutMediaRequest.FromString(encoded) == expected


def test_request_serializer() -> None:
    header = storage_pb2.PutMediaRequest(header=storage_pb2.MediaHeader(run_id="r", output_index=1))
    trailer = storage_pb2.PutMediaRequest(trailer=storage_pb2.MediaTrailer(size_bytes=3, sha256="ab"))
    for message in (header, trailer):
        assert wire.encode_request(message) == message.SerializeToString()
    encoded = wire.encode_chunk(b"abc")
    assert wire.encode_request(encoded) is encoded


def test_relayed_chunk_round_trips() -> None:
    data = os.urandom(100_000)
    decoded = wire.decode_event(chunk_event(7, data))
    assert isinstance(decoded, wire.Chunk)
    request = storage_pb2.PutMediaRequest.FromString(wire.encode_chunk(decoded.data))
    assert request.WhichOneof("part") == "chunk"
    assert request.chunk == data


def test_a_whole_media_event_and_a_chunk_followed_by_one_are_left_to_protobuf() -> None:
    whole = generator_pb2.GenerateEvent(
        media_whole=generator_pb2.MediaWhole(
            start=generator_pb2.MediaStart(index=2, format="png"), data=b"\x89PNG", sha256="ab"
        )
    ).SerializeToString()
    assert wire.decode_event(whole) == generator_pb2.GenerateEvent.FromString(whole)
    # Both oneof members on the wire: protobuf keeps the last one, so the codec must not say "chunk".
    both = chunk_event(1, b"data") + whole
    decoded = wire.decode_event(both)
    assert decoded == generator_pb2.GenerateEvent.FromString(both)
    assert isinstance(decoded, generator_pb2.GenerateEvent)
    assert decoded.WhichOneof("event") == "media_whole"
