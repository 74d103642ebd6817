"""Writing media: each slot once, committed only after its bytes checked out.

Media larger than one part look up the run, the slot's record and the
idempotency key together (one round trip) before their multipart upload
starts: a repeat of a stored write is then answered from the record without
writing anything. Media of one part skip that look-up, since the claims
below find the same things in the round trip they take anyway (an unknown
run is NOT_FOUND there, with the claims given back). After the trailer
checked out, the slot and key are claimed (see :mod:`storage_service.claims`)
and only then is the object completed, so whoever creates the record owns
the slot: of two concurrent writers exactly one wins; the other aborts its
upload and gets the winner's record when the sha256 matches, or
ALREADY_EXISTS when it differs. A failure after a claim rolls the claims back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from mediagen.scaffold import ServiceError
from mediagen.v1 import storage_pb2
from storage_service import records
from storage_service.catalog import MediaCatalog
from storage_service.claims import SlotClaims
from storage_service.headers import check_header, effective_probe
from storage_service.ingest import Discard, PartSink, Received, check_trailer, receive
from storage_service.intake import MediaIntake
from storage_service.layout import Slot
from storage_service.probe import Probe
from storage_service.settings import StorageSettings
from storage_service.store import MultipartUpload, ObjectStore, finish_anyway


class MediaLibrary:
    def __init__(self, store: ObjectStore, settings: StorageSettings) -> None:
        self.store = store
        self.catalog = MediaCatalog(store)
        self._claims = SlotClaims(store, self.catalog)
        self._settings = settings

    async def put(self, requests: AsyncIterator[storage_pb2.PutMediaRequest]) -> storage_pb2.MediaRecord:
        intake = MediaIntake(requests)
        header = await intake.header()
        slot = check_header(header)
        limit, part_size = self._settings.max_media_bytes, self._settings.part_size
        uploads: list[MultipartUpload] = []
        stored: list[storage_pb2.MediaRecord] = []

        async def begin(sniffed: Probe) -> PartSink:
            existing = await self._existing(slot, header.idempotency_key)
            if existing is not None:
                stored.append(existing)
                return Discard()
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
            if stored:
                return same_content_or_refuse(stored[0], received.sha256)
            received.probe = effective_probe(received.probe, header)
            record = records.media_record(slot, self.store.bucket, header, received)
            return await self._commit(record, header, received, uploads[0] if uploads else None)
        finally:
            for upload in uploads:
                await upload.discard()

    async def _existing(self, slot: Slot, key: str) -> storage_pb2.MediaRecord | None:
        """The record already holding this slot or key; NOT_FOUND when the run does not exist."""
        by_key = self.catalog.by_idempotency(slot.run_id, key) if key else _nothing()
        _, record, keyed = await asyncio.gather(
            self.catalog.require_run(slot.run_id), self.catalog.record(slot), by_key
        )
        return record or keyed

    async def _commit(
        self,
        record: storage_pb2.MediaRecord,
        header: storage_pb2.MediaHeader,
        received: Received,
        upload: MultipartUpload | None,
    ) -> storage_pb2.MediaRecord:
        claim = await self._claims.claim(record, header.idempotency_key)
        if claim.existing is not None:
            return same_content_or_refuse(claim.existing, received.sha256)
        try:
            await self._write_object(record, header, received, upload)
        except BaseException:
            await finish_anyway(self.store.remove(claim.taken), f"rolling back {record.media_id}")
            raise
        return record

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


async def _nothing() -> None:
    return None


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
