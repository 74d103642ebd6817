"""Writing media: each slot once, committed only after its bytes checked out.

A write commits in three conditional steps, all after the trailer checked out:
claim the idempotency key (if any), claim the slot by creating its record with
``If-None-Match: *``, then complete the object. Whoever creates the record
owns the slot, so of two concurrent writers exactly one wins; the other
aborts its upload and gets the winner's record when the sha256 matches, or
ALREADY_EXISTS when it differs. A failure after a claim rolls the claims back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc

from mediagen.scaffold import ServiceError
from mediagen.v1 import storage_pb2
from storage_service import records
from storage_service.catalog import MediaCatalog
from storage_service.headers import check_header, effective_probe
from storage_service.ingest import Received, check_trailer, receive
from storage_service.intake import MediaIntake
from storage_service.layout import Slot, idempotency_key
from storage_service.probe import Probe
from storage_service.settings import StorageSettings
from storage_service.store import MultipartUpload, ObjectExists, ObjectStore, finish_anyway

JSON = {"Content-Type": "application/json"}
# A taken idempotency key whose record has not appeared: how long to wait for its writer,
# and after how long the marker counts as left by a writer that died mid-commit.
COMMIT_WAIT_STEP = 0.05
COMMIT_WAIT_ROUNDS = 40
STALE_MARKER_SECONDS = 60.0


class MediaLibrary:
    def __init__(self, store: ObjectStore, settings: StorageSettings) -> None:
        self.store = store
        self.catalog = MediaCatalog(store)
        self._settings = settings

    async def put(self, requests: AsyncIterator[storage_pb2.PutMediaRequest]) -> storage_pb2.MediaRecord:
        intake = MediaIntake(requests)
        header = await intake.header()
        slot = check_header(header)
        await self.catalog.require_run(slot.run_id)
        existing = await self._existing(slot, header.idempotency_key)
        limit, part_size = self._settings.max_media_bytes, self._settings.part_size
        if existing is not None:
            received = await receive(intake.chunks(), limit, part_size, None)
            check_trailer(await intake.trailer(), received)
            return same_content_or_refuse(existing, received.sha256)
        uploads: list[MultipartUpload] = []

        async def begin(sniffed: Probe) -> MultipartUpload:
            probe = effective_probe(sniffed, header)
            upload = await MultipartUpload.begin(
                self.store,
                slot.media_key(probe.format),
                records.object_headers(header, probe),
                self._settings.parts_in_flight,
            )
            uploads.append(upload)
            return upload

        try:
            received = await receive(intake.chunks(), limit, part_size, begin)
            check_trailer(await intake.trailer(), received)
            received.probe = effective_probe(received.probe, header)
            record = records.media_record(slot, self.store.bucket, header, received)
            return await self._commit(record, header, received, uploads[0] if uploads else None)
        finally:
            for upload in uploads:
                await upload.discard()

    async def _existing(self, slot: Slot, key: str) -> storage_pb2.MediaRecord | None:
        return await self.catalog.record(slot) or (
            await self.catalog.by_idempotency(slot.run_id, key) if key else None
        )

    async def _commit(
        self,
        record: storage_pb2.MediaRecord,
        header: storage_pb2.MediaHeader,
        received: Received,
        upload: MultipartUpload | None,
    ) -> storage_pb2.MediaRecord:
        slot = Slot(record.run_id, record.output_index, record.item_index)
        await self.catalog.require_run(slot.run_id)  # deleted while the bytes were arriving
        claims: list[str] = []
        if header.idempotency_key:
            other = await self._claim_idempotency(slot, header.idempotency_key)
            if other is not None:
                return same_content_or_refuse(other, received.sha256)
            claims.append(idempotency_key(slot.run_id, header.idempotency_key))
        try:
            await self.store.put(slot.record_key, records.to_json(record), JSON, if_absent=True)
        except ObjectExists:
            await self.store.remove(claims)
            return same_content_or_refuse(await self._winner(slot), received.sha256)
        claims.append(slot.record_key)
        try:
            await self._write_object(record, header, received, upload)
        except BaseException:
            await finish_anyway(self.store.remove(claims), f"rolling back {slot.media_id}")
            raise
        return record

    async def _claim_idempotency(self, slot: Slot, key: str) -> storage_pb2.MediaRecord | None:
        """None once ``key`` is ours; else the record it already points to."""
        marker = idempotency_key(slot.run_id, key)
        body = json.dumps({"media_id": slot.media_id}).encode()
        try:
            await self.store.put(marker, body, JSON, if_absent=True)
        except ObjectExists:
            other = await self._await_idempotent_record(slot, key)
            if other is not None:
                return other
            await self.store.put(marker, body, JSON)  # left by a writer that died mid-commit
        return None

    async def _await_idempotent_record(self, slot: Slot, key: str) -> storage_pb2.MediaRecord | None:
        """The record a taken key points to, once its writer commits; None if that writer died."""
        marker = idempotency_key(slot.run_id, key)
        for _ in range(COMMIT_WAIT_ROUNDS):
            found = await self.catalog.by_idempotency(slot.run_id, key)
            if found is not None:
                return found
            await asyncio.sleep(COMMIT_WAIT_STEP)
        age = await self.store.age(marker)
        if age is not None and age > STALE_MARKER_SECONDS:
            return None
        raise ServiceError(
            grpc.StatusCode.ABORTED,
            f"idempotency key {key!r} is being committed by a concurrent write; retry",
            reason="CONCURRENT_WRITE",
            metadata={"media_id": slot.media_id},
        )

    async def _winner(self, slot: Slot) -> storage_pb2.MediaRecord:
        found = await self.catalog.record(slot)
        if found is None:
            raise ServiceError(
                grpc.StatusCode.ABORTED,
                f"a concurrent write of {slot.media_id} was rolled back while this one was committing; retry",
                reason="CONCURRENT_WRITE",
                metadata={"media_id": slot.media_id},
            )
        return found

    async def _write_object(
        self,
        record: storage_pb2.MediaRecord,
        header: storage_pb2.MediaHeader,
        received: Received,
        upload: MultipartUpload | None,
    ) -> None:
        if upload is not None:
            await upload.complete()
            return
        headers = records.object_headers(header, received.probe, received.sha256, received.size)
        await self.store.put(record.key, received.data, headers)


def same_content_or_refuse(existing: storage_pb2.MediaRecord, sha256: str) -> storage_pb2.MediaRecord:
    """The existing record when it holds these bytes; ALREADY_EXISTS when it holds others."""
    if existing.descriptor.sha256 == sha256:
        return existing
    raise ServiceError(
        grpc.StatusCode.ALREADY_EXISTS,
        f"media {existing.media_id} already holds different content (sha256 {existing.descriptor.sha256})",
        reason="MEDIA_EXISTS",
        metadata={"media_id": existing.media_id, "sha256": existing.descriptor.sha256},
    )
