"""The media codecs that bypass protobuf agree with protobuf byte for byte.

The generator writes chunk events onto the wire itself and storage reads chunk
requests as views of the received bytes (see ``generator_service.download``
and ``storage_service.intake``). Each case is checked against protobuf: what
the generator writes must be exactly what protobuf serializes, and what storage
reads must be what protobuf parses, with anything that is not plainly one
chunk left to protobuf.
"""

from __future__ import annotations

import os

import pytest
from google.protobuf.message import DecodeError

from generator_service.wire import chunk_event, encode_event
from mediagen.v1 import generator_pb2, storage_pb2
from storage_service.intake import decode_request

LENGTHS = (1, 127, 128, 129, 16383, 16384, 16385, 1024 * 1024 + 3)
INDEXES = (0, 1, 127, 128, 2**31, 2**32 - 1)


@pytest.mark.parametrize("index", INDEXES)
@pytest.mark.parametrize("length", LENGTHS)
def test_generator_chunk_events_are_what_protobuf_serializes(index: int, length: int) -> None:
    data = os.urandom(length)
    cut = length // 3
    pieces = [data[:cut], data[cut:]] if cut else [data]
    expected = generator_pb2.GenerateEvent(media_chunk=generator_pb2.MediaChunk(index=index, data=data))
    assert encode_event(chunk_event(index, pieces, length)) == expected.SerializeToString()


def test_other_generator_events_are_serialized_by_protobuf() -> None:
    event = generator_pb2.GenerateEvent(media_end=generator_pb2.MediaEnd(index=2, size_bytes=5, sha256="ab"))
    assert encode_event(event) == event.SerializeToString()


@pytest.mark.parametrize("length", [0, *LENGTHS])
def test_a_chunk_request_is_read_as_a_view_of_its_data(length: int) -> None:
    data = os.urandom(length)
    raw = storage_pb2.PutMediaRequest(chunk=data).SerializeToString()
    decoded = decode_request(raw)
    assert isinstance(decoded, memoryview)
    assert bytes(decoded) == storage_pb2.PutMediaRequest.FromString(raw).chunk == data


@pytest.mark.parametrize(
    "request_",
    [
        storage_pb2.PutMediaRequest(),
        storage_pb2.PutMediaRequest(header=storage_pb2.MediaHeader(run_id="r", output_index=1)),
        storage_pb2.PutMediaRequest(trailer=storage_pb2.MediaTrailer(size_bytes=3, sha256="00")),
    ],
)
def test_other_requests_are_parsed_by_protobuf(request_: storage_pb2.PutMediaRequest) -> None:
    decoded = decode_request(request_.SerializeToString())
    assert isinstance(decoded, storage_pb2.PutMediaRequest)
    assert decoded == request_


def test_a_chunk_followed_by_another_field_is_left_to_protobuf() -> None:
    """Protobuf keeps the last member of a oneof: here the trailer, not the chunk."""
    raw = (
        storage_pb2.PutMediaRequest(chunk=b"abc").SerializeToString()
        + storage_pb2.PutMediaRequest(trailer=storage_pb2.MediaTrailer(size_bytes=3)).SerializeToString()
    )
    decoded = decode_request(raw)
    assert isinstance(decoded, storage_pb2.PutMediaRequest)
    assert decoded.WhichOneof("part") == "trailer"


@pytest.mark.parametrize("raw", [b"\x12", b"\x12\x05abc", b"\x12\xff\xff\xff\xff\xff\xff"])
def test_a_truncated_chunk_is_protobuf_s_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        storage_pb2.PutMediaRequest.FromString(raw)
    with pytest.raises(DecodeError):
        decode_request(raw)
