"""An output's transfer: the generator's events move one explicit stage, and give the caller's events.

Driven with the generator's events against the real storage service (and MinIO): every
event that reaches the caller is returned by ``handle``; a stream that ends or completes
with a file open fails with DATA_LOSS and leaves nothing stored.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import grpc
import pytest

from gateway.peers import Peers, open_peers
from gateway.settings import GatewaySettings
from gateway.transfer import OutputTransfer, Stage
from mediagen.scaffold.errors import ServiceError
from mediagen.v1 import common_pb2, generator_pb2, storage_pb2
from tests.storage.client import fetch, wait_until_clean
from tests.storage.conftest import StorageServer

IMAGE = common_pb2.MediaType.MEDIA_TYPE_IMAGE


@pytest.fixture
async def peers(storage: StorageServer) -> AsyncIterator[Peers]:
    opened = open_peers(GatewaySettings.model_validate({"storage_target": storage.address}))
    yield opened
    await opened.close()


async def new_transfer(peers: Peers, storage: StorageServer, run_id: str) -> OutputTransfer:
    run = await storage.stub.CreateRun(storage_pb2.CreateRunRequest(run_id=run_id))
    created: asyncio.Future[storage_pb2.Run] = asyncio.get_running_loop().create_future()
    created.set_result(run)
    return OutputTransfer(
        put_media=peers.put_media,
        settings=GatewaySettings(),
        run_id=run.run_id,
        index=0,
        created=created,
    )


def accepted() -> generator_pb2.GenerateEvent:
    return generator_pb2.GenerateEvent(
        accepted=generator_pb2.Accepted(backend="sim", prompt_id="p-1", template="sd15_txt2img")
    )


def start(index: int = 0) -> generator_pb2.GenerateEvent:
    return generator_pb2.GenerateEvent(
        media_start=generator_pb2.MediaStart(
            index=index, media_type=IMAGE, mime_type="image/png", format="png", filename=f"out_{index}.png"
        )
    )


def completed() -> generator_pb2.GenerateEvent:
    return generator_pb2.GenerateEvent(completed=generator_pb2.Completed())


async def test_a_chunked_file_moves_through_every_stage_and_is_stored(
    peers: Peers, storage: StorageServer
) -> None:
    transfer = await new_transfer(peers, storage, "transfer-chunked")
    data = bytes(range(256)) * 1024
    sha256 = hashlib.sha256(data).hexdigest()
    half = len(data) // 2
    events = [
        accepted(),
        generator_pb2.GenerateEvent(progress=common_pb2.Progress(value=1, max=2)),
        start(),
        generator_pb2.GenerateEvent(media_chunk=generator_pb2.MediaChunk(index=0, data=data[:half])),
        generator_pb2.GenerateEvent(media_chunk=generator_pb2.MediaChunk(index=0, data=data[half:])),
        generator_pb2.GenerateEvent(
            media_end=generator_pb2.MediaEnd(index=0, size_bytes=len(data), sha256=sha256)
        ),
        completed(),
    ]
    stages = [transfer.stage]
    relayed = []
    for event in events:
        caller_event = await transfer.handle(event, 30.0)
        relayed.append(caller_event.WhichOneof("event") if caller_event is not None else None)
        stages.append(transfer.stage)
        if caller_event is not None and caller_event.HasField("media_stored"):
            stored = caller_event.media_stored.record
    transfer.check_complete()

    assert relayed == ["output_accepted", "output_progress", None, None, None, "media_stored", None]
    waiting, accepted_, in_file, done = Stage.WAITING, Stage.ACCEPTED, Stage.IN_FILE, Stage.COMPLETED
    assert stages == [waiting, accepted_, accepted_, in_file, in_file, in_file, accepted_, done]
    record, body = await fetch(storage.stub, stored.media_id)
    assert (body, record.descriptor.sha256) == (data, sha256)
    assert transfer.media_ids == [record.media_id]


async def test_a_whole_file_is_stored_in_one_event(peers: Peers, storage: StorageServer) -> None:
    transfer = await new_transfer(peers, storage, "transfer-whole")
    await transfer.handle(accepted(), 30.0)
    data = b"a small image" * 100
    whole = generator_pb2.MediaWhole(
        start=start().media_start, data=data, sha256=hashlib.sha256(data).hexdigest()
    )
    relayed = await transfer.handle(generator_pb2.GenerateEvent(media_whole=whole), 30.0)
    assert relayed is not None
    assert transfer.stage is Stage.ACCEPTED
    _, body = await fetch(storage.stub, relayed.media_stored.record.media_id)
    assert body == data


async def test_a_stream_ending_inside_a_file_loses_it_and_stores_nothing(
    peers: Peers, storage: StorageServer
) -> None:
    transfer = await new_transfer(peers, storage, "transfer-cut")
    await transfer.handle(accepted(), 30.0)
    await transfer.handle(start(), 30.0)
    chunk = generator_pb2.GenerateEvent(media_chunk=generator_pb2.MediaChunk(index=0, data=b"x" * 4096))
    await transfer.handle(chunk, 30.0)
    with pytest.raises(ServiceError) as caught:
        transfer.check_complete()
    assert (caught.value.code, caught.value.reason) == (
        grpc.StatusCode.DATA_LOSS,
        "GENERATOR_STREAM_TRUNCATED",
    )
    await transfer.abort()
    assert transfer.stage is Stage.ACCEPTED
    objects, uploads = await wait_until_clean(storage.minio, storage.bucket)
    assert (objects, uploads) == ([], [])


async def test_completed_with_a_file_open_fails_the_output(peers: Peers, storage: StorageServer) -> None:
    transfer = await new_transfer(peers, storage, "transfer-early")
    await transfer.handle(accepted(), 30.0)
    await transfer.handle(start(), 30.0)
    with pytest.raises(ServiceError) as caught:
        await transfer.handle(completed(), 30.0)
    assert (caught.value.code, caught.value.metadata.get("item_index")) == (grpc.StatusCode.DATA_LOSS, "0")
    assert transfer.stage is Stage.IN_FILE
    await transfer.abort()


async def test_a_stream_without_completed_is_truncated(peers: Peers, storage: StorageServer) -> None:
    transfer = await new_transfer(peers, storage, "transfer-unfinished")
    await transfer.handle(accepted(), 30.0)
    with pytest.raises(ServiceError) as caught:
        transfer.check_complete()
    assert caught.value.reason == "GENERATOR_STREAM_TRUNCATED"
