"""Runs: created once with their context, read back, deleted with everything under them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import grpc
import pytest

from mediagen.v1 import storage_pb2
from storage_service.servicer import StorageServicer
from tests.storage import media_files
from tests.storage.client import (
    chunks_of,
    failure,
    fields_of,
    header,
    leftovers,
    new_run,
    put,
    trailer_for,
)
from tests.storage.conftest import StorageServer


async def test_create_run_keeps_context_and_generates_an_id(storage_server: StorageServer):
    context = storage_pb2.RunContext(
        schema="txt2img/v1",
        execution_mode="sync",
        safety_level="strict",
        input_text="a red fox",
        labels={"team": "ml"},
    )
    run = await storage_server.stub.CreateRun(storage_pb2.CreateRunRequest(context=context))
    assert run.run_id
    assert run.created_at.seconds > 0
    got = await storage_server.stub.GetRun(storage_pb2.GetRunRequest(run_id=run.run_id))
    assert got.run == run
    assert list(got.media) == []
    stored = storage_server.minio.stat_object(storage_server.bucket, f"runs/{run.run_id}/run.json")
    assert stored.content_type == "application/json"


async def test_client_run_id_that_exists_is_already_exists(storage_server: StorageServer):
    await new_run(storage_server.stub, "run-1")
    with pytest.raises(grpc.RpcError) as caught:
        await new_run(storage_server.stub, "run-1")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_concurrent_creates_of_one_id_have_one_winner(storage_server: StorageServer):
    results = await asyncio.gather(
        *(new_run(storage_server.stub, "contested") for _ in range(8)), return_exceptions=True
    )
    winners = [r for r in results if r == "contested"]
    assert len(winners) == 1
    assert all(
        isinstance(r, grpc.RpcError) and r.code() == grpc.StatusCode.ALREADY_EXISTS
        for r in results
        if r != "contested"
    )


@pytest.mark.parametrize("bad", ["../x", "a/b", "a.b", "x" * 81, "space here", "ü"])
async def test_run_ids_that_could_be_paths_are_refused(storage_server: StorageServer, bad):
    with pytest.raises(grpc.RpcError) as caught:
        await new_run(storage_server.stub, bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields_of(caught.value) == ["run_id"]


async def test_unknown_run_is_not_found_everywhere(storage_server: StorageServer):
    stub = storage_server.stub
    calls: list[Awaitable[object]] = [
        stub.GetRun(storage_pb2.GetRunRequest(run_id="nope")),
        stub.ListRunMedia(storage_pb2.ListRunMediaRequest(run_id="nope")),
        stub.DeleteRun(storage_pb2.DeleteRunRequest(run_id="nope")),
        stub.GetMedia(storage_pb2.GetMediaRequest(media_id="nope.0.0")).read(),
        stub.PresignMedia(storage_pb2.PresignMediaRequest(media_id="nope.0.0")),
        put(stub, "nope", b"data"),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND, failure(caught.value)


async def markers_gone(minio, bucket: str, within: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while list(minio.list_objects(bucket, "uploads/", recursive=True)):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_delete_run_removes_objects_and_unfinished_uploads(storage_server: StorageServer):
    stub, minio, bucket = storage_server.stub, storage_server.minio, storage_server.bucket
    run_id = await new_run(stub)
    keep = await new_run(stub)
    await put(stub, run_id, media_files.png(), output=0)
    await put(stub, run_id, media_files.wav(), output=1, idempotency_key="k1")
    await put(stub, keep, media_files.png(), output=0)
    servicer = storage_server.running.spec.servicers[0][2]
    assert isinstance(servicer, StorageServicer)
    # An upload the service started and is still writing (every upload it starts is marked first).
    upload = await servicer._media.start_upload(f"runs/{run_id}/media/o009-i000.png", {})
    assert leftovers(minio, bucket, f"runs/{run_id}/")[1]

    deleted = await stub.DeleteRun(storage_pb2.DeleteRunRequest(run_id=run_id))

    assert deleted.deleted_objects == 6  # run.json, 2 records, 2 media, 1 idempotency marker
    assert list(minio.list_objects(bucket, f"runs/{run_id}/", recursive=True)) == []
    assert leftovers(minio, bucket, f"runs/{run_id}/") == ([], [])
    assert len(list(minio.list_objects(bucket, f"runs/{keep}/", recursive=True))) == 3
    upload.discard()  # its writer gives up: the marker goes, the upload already did
    assert await markers_gone(minio, bucket)
    with pytest.raises(grpc.RpcError) as caught:
        await stub.GetRun(storage_pb2.GetRunRequest(run_id=run_id))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_delete_run_during_an_upload_leaves_nothing_behind(storage_server: StorageServer):
    """A stream still arriving when its run is deleted cannot complete into a deleted run."""
    stub = storage_server.stub
    run_id = await new_run(stub)
    data = media_files.noisy_png(11 * 1024 * 1024)
    gate = asyncio.Event()

    async def slow_stream():
        yield header(run_id)
        for index, chunk in enumerate(chunks_of(data, 1024 * 1024)):
            if index == 7:
                await gate.wait()
            yield chunk
        yield trailer_for(data)

    call = stub.PutMedia(slow_stream())
    await asyncio.sleep(0.5)
    await stub.DeleteRun(storage_pb2.DeleteRunRequest(run_id=run_id))
    gate.set()
    with pytest.raises(grpc.RpcError) as caught:
        await call
    assert caught.value.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.NOT_FOUND), failure(caught.value)
    assert leftovers(storage_server.minio, storage_server.bucket) == ([], [])
