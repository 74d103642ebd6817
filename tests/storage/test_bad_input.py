"""Bad input gets INVALID_ARGUMENT (or NOT_FOUND) naming the field, and stores nothing."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import duration_pb2

from mediagen.v1 import storage_pb2
from tests.storage import media_files
from tests.storage.client import (
    as_async,
    chunks_of,
    fields_of,
    header,
    leftovers,
    new_run,
    put,
    trailer_for,
    whole,
)
from tests.storage.conftest import StorageServer

DATA = media_files.png()
Req = storage_pb2.PutMediaRequest


def streams(run_id: str) -> dict[str, tuple[list[Req], str]]:
    """Malformed PutMedia streams and the field each must be refused for."""
    good_trailer = trailer_for(DATA)
    chunks = list(chunks_of(DATA, 100))
    return {
        "empty stream": ([], "header"),
        "chunk before header": ([*chunks, good_trailer], "header"),
        "trailer first": ([good_trailer], "header"),
        "duplicate header": ([header(run_id), header(run_id), *chunks, good_trailer], "header"),
        "no trailer": ([header(run_id), *chunks], "trailer"),
        "chunk after trailer": ([header(run_id), *chunks, good_trailer, chunks[0]], "chunk"),
        "second trailer": ([header(run_id), *chunks, good_trailer, good_trailer], "trailer"),
        "empty media": ([header(run_id), trailer_for(b"")], "chunk"),
        "bad run id": ([header("../etc"), *chunks, good_trailer], "header.run_id"),
        "bad format hint": (
            [header(run_id, format_hint="p/n.g"), *chunks, good_trailer],
            "header.format_hint",
        ),
        "long config name": (
            [header(run_id, config_name="c" * 300), *chunks, good_trailer],
            "header.config_name",
        ),
        "whole without a trailer": ([whole(run_id, DATA, with_trailer=False)], "whole.trailer"),
        "chunk after a whole": ([whole(run_id, DATA), chunks[0]], "chunk"),
        "trailer after a whole": ([whole(run_id, DATA), good_trailer], "trailer"),
        "empty whole": ([whole(run_id, b"")], "chunk"),
        "oversized metadata": (
            [header(run_id, metadata={f"k{i}": "v" * 100 for i in range(20)}), *chunks, good_trailer],
            "header.metadata",
        ),
    }


@pytest.mark.parametrize("case", list(streams("r")))
async def test_malformed_put_media_names_the_field_and_stores_nothing(storage_server: StorageServer, case):
    run_id = await new_run(storage_server.stub)
    requests, field = streams(run_id)[case]
    with pytest.raises(grpc.RpcError) as caught:
        await storage_server.stub.PutMedia(as_async(requests))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields_of(caught.value) == [field]
    assert leftovers(storage_server.minio, storage_server.bucket) == ([], [])


@pytest.mark.parametrize(
    "media_id", ["", "run", "run.1", "run.1.2.3", "../x.0.0", "run.-1.0", "run.1.99999999999"]
)
async def test_malformed_media_ids_are_invalid_argument(storage_server: StorageServer, media_id):
    stub = storage_server.stub
    for call in (
        stub.GetMedia(storage_pb2.GetMediaRequest(media_id=media_id)).read(),
        stub.PresignMedia(storage_pb2.PresignMediaRequest(media_id=media_id)),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert fields_of(caught.value) == ["media_id"]


async def test_missing_media_of_an_existing_run_is_not_found(storage_server: StorageServer):
    run_id = await new_run(storage_server.stub)
    with pytest.raises(grpc.RpcError) as caught:
        await storage_server.stub.GetMedia(storage_pb2.GetMediaRequest(media_id=f"{run_id}.0.0")).read()
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("seconds", [-5, 2 * 86400, 30 * 86400])
async def test_presign_ttl_beyond_the_maximum_is_refused(storage_server: StorageServer, seconds):
    run_id = await new_run(storage_server.stub)
    record = await put(storage_server.stub, run_id, DATA)
    request = storage_pb2.PresignMediaRequest(
        media_id=record.media_id, ttl=duration_pb2.Duration(seconds=seconds)
    )
    with pytest.raises(grpc.RpcError) as caught:
        await storage_server.stub.PresignMedia(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields_of(caught.value) == ["ttl"]


async def test_media_whose_object_was_removed_behind_our_back_is_not_found(storage_server: StorageServer):
    run_id = await new_run(storage_server.stub)
    record = await put(storage_server.stub, run_id, DATA)
    storage_server.minio.remove_object(storage_server.bucket, record.key)
    with pytest.raises(grpc.RpcError) as caught:
        await storage_server.stub.GetMedia(storage_pb2.GetMediaRequest(media_id=record.media_id)).read()
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
