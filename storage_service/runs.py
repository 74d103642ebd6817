"""Runs: created once, read back with their media, deleted with everything under them.

``run.json`` is written with ``If-None-Match: *`` and never rewritten, so a
caller-chosen id that is taken fails with ALREADY_EXISTS even when two
callers race for it. Deleting first aborts the run's unfinished uploads
(every upload is marked before it is created, see
:mod:`storage_service.store.cleanup`), removes the media, and removes
``run.json`` last, so a delete cut short can be repeated.
"""

from __future__ import annotations

import uuid

import grpc
from google.protobuf import timestamp_pb2

from mediagen.scaffold import ServiceError
from mediagen.v1 import storage_pb2
from storage_service import records
from storage_service.layout import check_run_id, run_key, run_prefix
from storage_service.store import ObjectExists, ObjectStore
from storage_service.store.cleanup import UploadCleanup

JSON = {"Content-Type": "application/json"}


class RunBook:
    def __init__(self, store: ObjectStore, cleanup: UploadCleanup) -> None:
        self.store = store
        self._cleanup = cleanup

    async def create(self, request: storage_pb2.CreateRunRequest, caller: str) -> storage_pb2.Run:
        """Records the run as ``caller``'s (its owner, kept in ``run.json``)."""
        run_id = check_run_id(request.run_id) if request.run_id else uuid.uuid4().hex
        created = timestamp_pb2.Timestamp()
        created.GetCurrentTime()
        run = storage_pb2.Run(run_id=run_id, created_at=created, context=request.context, caller=caller)
        try:
            await self.store.put(run_key(run_id), records.to_json(run), JSON, if_absent=True)
        except ObjectExists:
            raise ServiceError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"run {run_id} already exists",
                reason="RUN_EXISTS",
                metadata={"run_id": run_id},
            ) from None
        return run

    async def get(self, run_id: str) -> storage_pb2.Run:
        data = await self.store.get(run_key(check_run_id(run_id)))
        if data is None:
            raise not_found(run_id)
        return records.run_from_json(data)

    async def delete(self, run_id: str) -> int:
        """Removes the run and all its objects; the number of objects removed."""
        if not await self.store.exists(run_key(check_run_id(run_id))):
            raise not_found(run_id)
        prefix = run_prefix(run_id)
        await self._cleanup.release_run(prefix)
        keys = [key for key in await self.store.keys(prefix) if key != run_key(run_id)]
        await self.store.remove(keys)
        await self.store.remove([run_key(run_id)])
        return len(keys) + 1


def not_found(run_id: str) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.NOT_FOUND,
        f"run {run_id} does not exist",
        reason="RUN_NOT_FOUND",
        metadata={"run_id": run_id},
    )
