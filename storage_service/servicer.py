"""The StorageService RPCs, each a thin layer over runs, media and the store."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc
from google.protobuf import timestamp_pb2
from grpc import aio

from mediagen.scaffold import ServiceError, tracing
from mediagen.scaffold.callers import current_caller
from mediagen.scaffold.errors import invalid_argument
from mediagen.scaffold.logging import bind_log_ids
from mediagen.scaffold.metrics import BYTES_STREAMED
from mediagen.v1 import storage_pb2, storage_pb2_grpc
from storage_service.intake import REFUSED, MediaIntake, Request
from storage_service.layout import Slot, check_run_id
from storage_service.media import MediaLibrary
from storage_service.runs import RunBook
from storage_service.settings import StorageSettings
from storage_service.store import ObjectStore
from storage_service.store.cleanup import UploadCleanup
from storage_service.store.uploads import S3Uploads

Context: TypeAlias = "aio.ServicerContext[Any, Any]"
READ_CHUNK = 1024 * 1024


class StorageServicer(storage_pb2_grpc.StorageServiceServicer):
    def __init__(
        self, store: ObjectStore, settings: StorageSettings, uploads: S3Uploads, cleanup: UploadCleanup
    ) -> None:
        self._store = store
        self._settings = settings
        self._runs = RunBook(store, cleanup)
        self._media = MediaLibrary(store, uploads, cleanup, settings)

    async def CreateRun(self, request: storage_pb2.CreateRunRequest, context: Context) -> storage_pb2.Run:
        # The gateway (an admin caller) creates runs on behalf of its own callers.
        caller = current_caller()
        if len(request.caller) > 64:
            raise invalid_argument("caller", "at most 64 characters")
        owner = request.caller if caller.admin and request.caller else caller.name
        run = await self._runs.create(request, owner)
        bind_log_ids(run_id=run.run_id)
        return run

    async def GetRun(
        self, request: storage_pb2.GetRunRequest, context: Context
    ) -> storage_pb2.GetRunResponse:
        run = await self._runs.get(request.run_id)
        return storage_pb2.GetRunResponse(run=run, media=await self._media.catalog.list(run.run_id))

    async def ListRunMedia(
        self, request: storage_pb2.ListRunMediaRequest, context: Context
    ) -> storage_pb2.ListRunMediaResponse:
        run = await self._runs.get(request.run_id)
        return storage_pb2.ListRunMediaResponse(media=await self._media.catalog.list(run.run_id))

    async def PutMedia(
        self, request_iterator: AsyncIterator[Request], context: Context
    ) -> storage_pb2.MediaRecord:
        intake = MediaIntake(request_iterator)
        try:
            record = await self._media.put(intake)
        except Exception as exc:
            if not intake.closed_by_caller:  # see storage_service.intake: the status must not be lost
                code = exc.code if isinstance(exc, ServiceError) else grpc.StatusCode.INTERNAL
                await context.send_initial_metadata(((REFUSED, code.name),))
                await intake.drain()
            raise
        BYTES_STREAMED.labels("storage", "in").inc(record.descriptor.size_bytes)
        if tracing.enabled():
            tracing.annotate(
                {
                    "mediagen.run_id": record.run_id,
                    "mediagen.output_index": record.output_index,
                    "mediagen.item_index": record.item_index,
                    "mediagen.backend": record.backend,
                    "mediagen.media_id": record.media_id,
                    "mediagen.bytes": record.descriptor.size_bytes,
                }
            )
        return record

    async def GetMedia(
        self, request: storage_pb2.GetMediaRequest, context: Context
    ) -> AsyncIterator[storage_pb2.GetMediaResponse]:
        record = await self._media.catalog.require(Slot.parse(request.media_id))
        bind_log_ids(run_id=record.run_id)
        chunks = self._store.read_chunks(record.key, READ_CHUNK)
        try:
            first = await anext(chunks, None)
            if first is None:
                raise ServiceError(
                    grpc.StatusCode.NOT_FOUND,
                    f"the object of media {record.media_id} is missing",
                    reason="OBJECT_MISSING",
                    metadata={"media_id": record.media_id, "key": record.key},
                )
            yield storage_pb2.GetMediaResponse(record=record)
            yield storage_pb2.GetMediaResponse(chunk=first)
            async for chunk in chunks:
                BYTES_STREAMED.labels("storage", "out").inc(len(chunk))
                yield storage_pb2.GetMediaResponse(chunk=chunk)
        finally:
            await chunks.aclose()

    async def PresignMedia(
        self, request: storage_pb2.PresignMediaRequest, context: Context
    ) -> storage_pb2.PresignMediaResponse:
        ttl = self._ttl(request)
        record = await self._media.catalog.require(Slot.parse(request.media_id))
        expires = timestamp_pb2.Timestamp()
        expires.FromDatetime(datetime.datetime.now(datetime.UTC) + ttl)
        return storage_pb2.PresignMediaResponse(url=self._store.presign(record.key, ttl), expires_at=expires)

    async def DeleteRun(
        self, request: storage_pb2.DeleteRunRequest, context: Context
    ) -> storage_pb2.DeleteRunResponse:
        check_run_id(request.run_id)
        return storage_pb2.DeleteRunResponse(deleted_objects=await self._runs.delete(request.run_id))

    def _ttl(self, request: storage_pb2.PresignMediaRequest) -> datetime.timedelta:
        # Counted in Python integers: a Duration off the wire may hold any int64 of seconds, far
        # beyond what a timedelta holds.
        nanos = request.ttl.seconds * 10**9 + request.ttl.nanos if request.HasField("ttl") else 0
        if nanos == 0:
            return self._settings.presign_default_ttl
        limit = self._settings.presign_max_ttl
        if not 10**9 <= nanos <= limit // datetime.timedelta(microseconds=1) * 1000:
            raise invalid_argument(
                "ttl", f"must be between 1s and the configured maximum of {int(limit.total_seconds())}s"
            )
        return datetime.timedelta(microseconds=nanos // 1000)
