"""Nothing stored twice, nothing lost: slots and idempotency keys are written once,
repeats with the same bytes get the first record, and concurrent writers of one
run never lose each other's media."""

from __future__ import annotations

import asyncio
import hashlib
import os

import grpc
import pytest

from mediagen.v1 import storage_pb2
from tests.storage import media_files
from tests.storage.client import as_async, failure, fetch, leftovers, new_run, put, whole
from tests.storage.conftest import StorageServer


def slot_objects(server: StorageServer, run_id: str) -> list[str]:
    objects, _ = leftovers(server.minio, server.bucket, f"runs/{run_id}/")
    return sorted(objects)


async def test_same_slot_same_bytes_returns_the_first_record(storage_server: StorageServer):
    run_id = await new_run(storage_server.stub)
    data = media_files.png()
    first = await put(storage_server.stub, run_id, data, output=1)
    again = await put(storage_server.stub, run_id, data, output=1, config_name="other")
    assert again == first
    assert slot_objects(storage_server, run_id) == [first.key, f"runs/{run_id}/records/o001-i000.json"]


async def test_same_slot_other_bytes_is_already_exists_and_keeps_the_first(storage_server: StorageServer):
    run_id = await new_run(storage_server.stub)
    first = await put(storage_server.stub, run_id, media_files.png(), output=1)
    with pytest.raises(grpc.RpcError) as caught:
        await put(storage_server.stub, run_id, media_files.jpeg(), output=1)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert failure(caught.value).metadata["media_id"] == first.media_id
    _, body = await fetch(storage_server.stub, first.media_id)
    assert body == media_files.png()
    assert len(slot_objects(storage_server, run_id)) == 2


async def test_idempotency_key_returns_the_first_record_or_refuses_other_bytes(storage_server: StorageServer):
    run_id = await new_run(storage_server.stub)
    data = media_files.wav()
    first = await put(storage_server.stub, run_id, data, output=0, idempotency_key="job-7/out-0")
    retried = await put(storage_server.stub, run_id, data, output=5, idempotency_key="job-7/out-0")
    assert retried == first
    with pytest.raises(grpc.RpcError) as caught:
        await put(storage_server.stub, run_id, media_files.png(), output=6, idempotency_key="job-7/out-0")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    listed = await storage_server.stub.ListRunMedia(storage_pb2.ListRunMediaRequest(run_id=run_id))
    assert [m.media_id for m in listed.media] == [first.media_id]


async def test_a_key_that_is_the_items_own_media_id_is_held_by_its_record(storage_server: StorageServer):
    """The gateway's keys are the item's media id: no marker is written, a repeat gets the record."""
    run_id = await new_run(storage_server.stub)
    data = media_files.png()
    first = await put(storage_server.stub, run_id, data, output=2, idempotency_key=f"{run_id}.2.0")
    again = await put(storage_server.stub, run_id, data, output=2, idempotency_key=f"{run_id}.2.0")
    assert again == first
    assert first.idempotency_key == f"{run_id}.2.0"
    assert slot_objects(storage_server, run_id) == [first.key, f"runs/{run_id}/records/o002-i000.json"]
    with pytest.raises(grpc.RpcError) as caught:
        await put(storage_server.stub, run_id, media_files.jpeg(), output=2, idempotency_key=f"{run_id}.2.0")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_a_whole_message_stores_like_a_stream_and_a_wrong_one_stores_nothing(
    storage_server: StorageServer,
):
    run_id = await new_run(storage_server.stub)
    data = media_files.png()
    record = await storage_server.stub.PutMedia(as_async([whole(run_id, data, output=7)]))
    streamed = await put(storage_server.stub, run_id, data, output=7)  # a repeat, as three messages
    assert streamed == record
    _, body = await fetch(storage_server.stub, record.media_id)
    assert body == data
    lying = whole(run_id, data, output=8)
    lying.whole.trailer.sha256 = "0" * 64
    with pytest.raises(grpc.RpcError) as caught:
        await storage_server.stub.PutMedia(as_async([lying]))
    assert caught.value.code() == grpc.StatusCode.DATA_LOSS
    assert slot_objects(storage_server, run_id) == [record.key, f"runs/{run_id}/records/o007-i000.json"]


async def test_a_key_naming_another_item_of_the_run_is_refused(storage_server: StorageServer):
    run_id = await new_run(storage_server.stub)
    await put(storage_server.stub, run_id, media_files.png(), output=0, idempotency_key=f"{run_id}.0.0")
    with pytest.raises(grpc.RpcError) as caught:
        await put(storage_server.stub, run_id, media_files.png(), output=1, idempotency_key=f"{run_id}.0.0")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "header.idempotency_key" in (caught.value.details() or "")
    # Keys that only look alike, or name another run's media, are ordinary keys.
    for output, key in ((3, f"{run_id}.0"), (4, f"{run_id}.0.0.0"), (5, "other-run.0.0")):
        record = await put(storage_server.stub, run_id, media_files.wav(), output=output, idempotency_key=key)
        assert record.idempotency_key == key
    listed = await storage_server.stub.ListRunMedia(storage_pb2.ListRunMediaRequest(run_id=run_id))
    assert [m.media_id for m in listed.media] == [f"{run_id}.{o}.0" for o in (0, 3, 4, 5)]


@pytest.mark.parametrize("size", ["one-part", "multipart"])
async def test_concurrent_writers_of_one_slot_with_different_bytes_have_one_winner(
    storage_server: StorageServer, size
):
    """Different content may even mean different formats, hence different object keys."""
    run_id = await new_run(storage_server.stub)
    extra = 6 * 1024 * 1024 if size == "multipart" else 0
    contents = [media_files.png(), media_files.jpeg(), media_files.wav(), b"plain bytes"] * 2
    contents = [c + os.urandom(extra) + bytes([i]) for i, c in enumerate(contents)]
    results = await asyncio.gather(
        *(put(storage_server.stub, run_id, c, output=4) for c in contents), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, storage_pb2.MediaRecord)]
    assert len(winners) == 1, results
    losers = [r for r in results if not isinstance(r, storage_pb2.MediaRecord)]
    assert all(isinstance(r, grpc.RpcError) and r.code() == grpc.StatusCode.ALREADY_EXISTS for r in losers)
    winner = winners[0]
    _, body = await fetch(storage_server.stub, winner.media_id)
    assert hashlib.sha256(body).hexdigest() == winner.descriptor.sha256
    assert body in contents
    await asyncio.sleep(0.2)  # losers' aborts may still be on their way
    objects, uploads = leftovers(storage_server.minio, storage_server.bucket, f"runs/{run_id}/")
    assert sorted(objects) == sorted([winner.key, f"runs/{run_id}/records/o004-i000.json"])
    assert uploads == []


async def test_concurrent_writers_of_the_same_bytes_all_get_one_record(storage_server: StorageServer):
    run_id = await new_run(storage_server.stub)
    data = media_files.noisy_png(7 * 1024 * 1024)
    results = await asyncio.gather(*(put(storage_server.stub, run_id, data, output=2) for _ in range(6)))
    assert len({r.created_at.ToNanoseconds() for r in results}) == 1
    assert len(slot_objects(storage_server, run_id)) == 2


async def test_concurrent_retries_with_one_idempotency_key_store_once(storage_server: StorageServer):
    run_id = await new_run(storage_server.stub)
    data = media_files.png()
    results = await asyncio.gather(
        *(put(storage_server.stub, run_id, data, output=i, idempotency_key="only-once") for i in range(6)),
        return_exceptions=True,
    )
    records = [r for r in results if isinstance(r, storage_pb2.MediaRecord)]
    others = [r for r in results if not isinstance(r, storage_pb2.MediaRecord)]
    assert records
    assert len({r.media_id for r in records}) == 1
    assert all(isinstance(r, grpc.RpcError) and r.code() == grpc.StatusCode.ABORTED for r in others)
    listed = await storage_server.stub.ListRunMedia(storage_pb2.ListRunMediaRequest(run_id=run_id))
    assert [m.media_id for m in listed.media] == [records[0].media_id]


async def test_thirty_two_concurrent_puts_into_one_run_all_land(storage_server: StorageServer):
    run_id = await new_run(storage_server.stub)
    contents = {i: media_files.png(16 + i, 16) for i in range(32)}
    records = await asyncio.gather(
        *(
            put(
                storage_server.stub,
                run_id,
                data,
                output=i // 4,
                item=i % 4,
                metadata={"n": str(i)},
                backend=f"b{i}",
            )
            for i, data in contents.items()
        )
    )
    listed = await storage_server.stub.ListRunMedia(storage_pb2.ListRunMediaRequest(run_id=run_id))
    assert len(listed.media) == 32
    for record in listed.media:
        n = record.output_index * 4 + record.item_index
        assert record.metadata["n"] == str(n)
        assert record.backend == f"b{n}"
        assert record.descriptor.width == 16 + n
        assert record.descriptor.sha256 == hashlib.sha256(contents[n]).hexdigest()
    assert sorted(r.media_id for r in records) == sorted(m.media_id for m in listed.media)
