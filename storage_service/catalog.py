"""Finding media: by id, by idempotency key, or all of a run, without a shared index.

There is no index object to read-modify-write: the records under a run's
``records/`` prefix are the index, so concurrent writers never lose one, and a
record is found from its media id with a single GET.
"""

from __future__ import annotations

import asyncio
import json

import grpc

from mediagen.scaffold import ServiceError
from mediagen.v1 import storage_pb2
from storage_service import records
from storage_service.layout import Slot, idempotency_key, records_prefix, run_key
from storage_service.store import ObjectStore

PARALLEL_READS = 16


class MediaCatalog:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def require_run(self, run_id: str) -> None:
        if not await self.store.exists(run_key(run_id)):
            raise ServiceError(
                grpc.StatusCode.NOT_FOUND,
                f"run {run_id} does not exist",
                reason="RUN_NOT_FOUND",
                metadata={"run_id": run_id},
            )

    async def record(self, slot: Slot) -> storage_pb2.MediaRecord | None:
        data = await self.store.get(slot.record_key)
        return records.record_from_json(data) if data is not None else None

    async def require(self, slot: Slot) -> storage_pb2.MediaRecord:
        found = await self.record(slot)
        if found is None:
            raise ServiceError(
                grpc.StatusCode.NOT_FOUND,
                f"media {slot.media_id} does not exist",
                reason="MEDIA_NOT_FOUND",
                metadata={"media_id": slot.media_id},
            )
        return found

    async def holds_object(self, record: storage_pb2.MediaRecord) -> bool:
        """Whether the record's object is there and is the one the record describes.

        Objects of one part carry their sha256; a multipart object is only ever
        completed by the record's owner, so its size is the check.
        """
        facts = await self.store.facts(record.key)
        if facts is None:
            return False
        size, headers = facts
        sha256 = headers.get("x-amz-meta-sha256")
        return sha256 == record.descriptor.sha256 if sha256 else size == record.descriptor.size_bytes

    async def list(self, run_id: str) -> list[storage_pb2.MediaRecord]:
        keys = await self.store.keys(records_prefix(run_id))
        gate = asyncio.Semaphore(PARALLEL_READS)

        async def load(key: str) -> bytes | None:
            async with gate:
                return await self.store.get(key)

        loaded = await asyncio.gather(*(load(key) for key in keys))
        found = [records.record_from_json(data) for data in loaded if data is not None]
        return sorted(found, key=lambda r: (r.output_index, r.item_index))

    async def by_idempotency(self, run_id: str, key: str) -> storage_pb2.MediaRecord | None:
        data = await self.store.get(idempotency_key(run_id, key))
        if data is None:
            return None
        return await self.record(Slot.parse(json.loads(data)["media_id"]))
