"""Nothing stored twice: a run retried under the same id, and its writes replayed.

The gateway gives every media write the idempotency key
``<run>.<output>.<item>`` and storage owns one slot per (run, output, item),
so both a retried call and a write repeated by a confused or retrying
producer must come back to the one object already there. The replays go to
storage directly, concurrently, with the gateway's exact header.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from grpc import aio

from bench.faults.observe import settled_leftovers, stored_run_id
from bench.faults.rig import Rig, Row
from bench.faults.watch import MiB, large_output
from mediagen.v1 import storage_pb2, storage_pb2_grpc

SIZE = 12 * MiB  # above the 8 MiB part size: the multipart path
CHUNK = 512 * 1024


async def _requests(
    header: storage_pb2.MediaHeader, data: bytes, sha256: str
) -> AsyncIterator[storage_pb2.PutMediaRequest]:
    yield storage_pb2.PutMediaRequest(header=header)
    for start in range(0, len(data), CHUNK):
        yield storage_pb2.PutMediaRequest(chunk=data[start : start + CHUNK])
    yield storage_pb2.PutMediaRequest(trailer=storage_pb2.MediaTrailer(size_bytes=len(data), sha256=sha256))


async def _put(
    stub: storage_pb2_grpc.StorageServiceAsyncStub, header: storage_pb2.MediaHeader, data: bytes, sha256: str
) -> str:
    try:
        record = await stub.PutMedia(_requests(header, data, sha256), timeout=30)  # type: ignore[arg-type]
        return str(record.media_id)
    except grpc.RpcError as err:
        return err.code().name  # type: ignore[attr-defined,no-any-return]


def _newest_png(root: Path) -> Path:
    return max(root.rglob("*.png"), key=lambda p: p.stat().st_mtime)


async def stored_twice(rig: Rig) -> Row:
    row = Row("retry same run id + replayed writes")
    run_id = f"dup-{uuid.uuid4().hex[:8]}"
    first = rig.start_run(large_output(SIZE, seed=17), run_id=run_id, timeout=60)
    status = await first.wait_status(40)
    await first.close()
    if status is None or status.code != "OK" or first.media_stored != 1:
        row.code = status.code if status else "-"
        row.notes.append(f"first attempt did not store one media: {status}")
        return row
    retry = rig.start_run(large_output(SIZE, seed=17), run_id=run_id, timeout=60)
    status = await retry.wait_status(40)
    await retry.close()
    row.code = status.code if status else "-"
    row.to_status = status.at - retry.started if status else None
    row.baseline = "retry refused before any work" if row.code == "ALREADY_EXISTS" else "retry ran again"
    row.notes.append(f"retry: {status.message[:80] if status else 'no status'}")
    stored = first.events[-1].run_completed  # the last event of a finished run
    record_sha = next(
        e.media_stored.record.descriptor.sha256 for e in first.events if e.HasField("media_stored")
    )
    data = await asyncio.to_thread(_newest_png(rig.s.simulator_data_dir / "output").read_bytes)
    stored_id = stored_run_id(run_id)  # storage knows the run by the id the gateway stored it under
    key = f"{stored_id}.0.0"
    header = storage_pb2.MediaHeader(run_id=stored_id, output_index=0, item_index=0, idempotency_key=key)
    elsewhere = storage_pb2.MediaHeader(run_id=stored_id, output_index=1, item_index=0, idempotency_key=key)
    async with aio.insecure_channel(rig.s.addresses["storage"]) as channel:
        stub: storage_pb2_grpc.StorageServiceAsyncStub = storage_pb2_grpc.StorageServiceStub(channel)  # type: ignore[assignment]
        answers = await asyncio.gather(
            _put(stub, header, data, record_sha),
            _put(stub, header, data, record_sha),
            _put(stub, elsewhere, data, record_sha),
        )
    row.notes.append(
        f"3 concurrent replays of {key} answered {answers} (run had {stored.media_stored} media)"
    )
    found, _ = await settled_leftovers(rig.client, rig.s.bucket, run_id, 5.0)
    row.partial, row.uploads = found.partial, found.uploads
    row.duplicates = found.duplicates + max(found.records - 1, 0)
    row.freed = "-"
    row.notes.append(f"bucket: {found.media_objects} media object(s), {found.records} record(s)")
    return row
