"""Writing media: each slot once, committed only after its bytes checked out.

Read top to bottom, :meth:`MediaLibrary.put` does this:

1. The header is checked.
2. The bytes are received (:func:`storage_service.ingest.receive`). Media
   larger than one part is looked up when its first part is full, before
   that part goes out: the run must exist, and a record already holding the
   slot or the idempotency key means this write is a repeat
   (:meth:`MediaLibrary.stored`), then only counted and hashed, never
   uploaded; otherwise a multipart upload starts (:class:`UploadStart`).
   Media of one part is not looked up: the commit's claim finds the same
   records in its own round trip, and the look-up's three requests were a
   third of the S3 requests of a small media.
3. The trailer must match the bytes (DATA_LOSS otherwise), and a repeat is
   answered from the stored record: the same sha256 returns it, other bytes
   are ALREADY_EXISTS. A record whose object is not there (yet, or any more:
   a failed write's claim not yet given back) is ABORTED, to be retried.
4. The slot is claimed (:mod:`storage_service.claims`) and the object
   written. One part: the claim and an ``If-None-Match: *`` PUT of the object
   go out together, one round trip in the common case. Multipart: the claim,
   then CompleteMultipartUpload, so whoever holds the record completes.

Of two concurrent writers exactly one owns the record. The owner's object
wins even where a loser's PUT created the key first (the owner then
overwrites it); a loser removes an object it created only where the owner's
record points elsewhere. A failure after a claim gives the claim back.
"""

from __future__ import annotations

import asyncio

import grpc

from mediagen.scaffold import ServiceError
from mediagen.v1 import storage_pb2
from storage_service import records
from storage_service.catalog import MediaCatalog
from storage_service.claims import Ownership, SlotClaims, concurrent_write
from storage_service.headers import check_header, effective_probe
from storage_service.ingest import Discard, PartSink, Received, check_trailer, receive
from storage_service.intake import MediaIntake
from storage_service.layout import Slot
from storage_service.probe import Probe
from storage_service.settings import StorageSettings
from storage_service.store import MultipartUpload, ObjectExists, ObjectStore
from storage_service.store.cleanup import UploadCleanup
from storage_service.store.uploads import S3Uploads

Record = storage_pb2.MediaRecord


CONCURRENT_WRITE_WAIT_SECONDS = 3.0
"""How long a repeat waits for the object of a record whose write is in flight."""


class MediaLibrary:
    def __init__(
        self, store: ObjectStore, uploads: S3Uploads, cleanup: UploadCleanup, settings: StorageSettings
    ) -> None:
        self.store = store
        self.catalog = MediaCatalog(store)
        self._uploads = uploads
        self._cleanup = cleanup
        self._claims = SlotClaims(store, self.catalog, cleanup)
        self._settings = settings

    async def put(self, intake: MediaIntake) -> Record:
        header = await intake.header()
        slot = check_header(header)
        start = UploadStart(self, slot, header)
        try:
            received = await receive(
                intake.chunks(), self._settings.max_media_bytes, self._settings.part_size, start
            )
            check_trailer(await intake.trailer(), received)
            if start.existing is not None:
                return await self._answer_from(start.existing, received.sha256)
            received.probe = effective_probe(received.probe, header)
            record = records.media_record(slot, self.store.bucket, header, received)
            if start.upload is not None:
                return await self._commit_upload(record, start.upload)
            return await self._commit_one_part(record, header, received)
        finally:
            if start.upload is not None:
                start.upload.discard()

    async def stored(self, slot: Slot, key: str) -> Record | None:
        """The record already holding this slot or key; NOT_FOUND when the run does not exist."""
        by_key = self.catalog.by_idempotency(slot.run_id, key) if slot.needs_marker(key) else _nothing()
        _, record, keyed = await asyncio.gather(
            self.catalog.require_run(slot.run_id), self.catalog.record(slot), by_key
        )
        return record or keyed

    async def _answer_from(self, existing: Record, sha256: str) -> Record:
        """A repeat's answer: the stored record, once its object is there (see ``store.cleanup``).

        A record without its object is a write in flight (a concurrent writer of the same bytes
        that won the claim a moment ago) or one being undone. The first ends within moments, so
        the repeat waits a little for the object before it is told to retry.
        """
        same = same_content_or_refuse(existing, sha256)
        pause, waited = 0.01, 0.0
        while not await self.catalog.holds_object(existing):
            if waited >= CONCURRENT_WRITE_WAIT_SECONDS:
                raise self._still_being_written(existing)
            await asyncio.sleep(pause)
            waited += pause
            pause = min(pause * 2, 0.25)
        return same

    @staticmethod
    def _still_being_written(existing: Record) -> ServiceError:
        what = f"media {existing.media_id} is being written, or its failed write undone"
        return concurrent_write(existing.media_id, what)

    async def start_upload(self, key: str, headers: dict[str, str]) -> MultipartUpload:
        return await MultipartUpload.begin(
            self._uploads, self._cleanup, key, headers, self._settings.parts_in_flight
        )

    async def _commit_upload(self, record: Record, upload: MultipartUpload) -> Record:
        claim = await self._claims.claim(record, record.idempotency_key)
        if claim.ownership is Ownership.STORED:
            assert claim.existing is not None
            return await self._answer_from(claim.existing, record.descriptor.sha256)
        try:
            await upload.complete()
        except BaseException:  # the complete may have taken effect with its answer lost
            await self._claims.give_back(
                (*claim.taken, record.key), lambda: self.catalog.holds_object(record)
            )
            raise
        return record

    async def _commit_one_part(
        self, record: Record, header: storage_pb2.MediaHeader, received: Received
    ) -> Record:
        headers = records.object_headers(header, received.probe, received.sha256, received.size)
        claimed, created = await asyncio.gather(
            self._claims.claim(record, record.idempotency_key),
            self._create_object(record.key, received.data, headers),
            return_exceptions=True,
        )
        maybe_ours = created is not False  # True, or a failure that may have written it
        if isinstance(claimed, BaseException):
            if maybe_ours:  # unless a writer holding the slot has it by then
                await self._claims.give_back([record.key], lambda: self._slot_held(record))
            raise claimed
        if claimed.ownership is Ownership.STORED:
            assert claimed.existing is not None
            if maybe_ours and claimed.existing.key != record.key:
                await self._claims.give_back([record.key])  # ours alone: the owner writes elsewhere
            return await self._answer_from(claimed.existing, record.descriptor.sha256)
        try:
            if isinstance(created, BaseException):
                raise created
            if not created:  # a loser's or a crashed writer's object: the slot's owner replaces it
                await self.store.put(record.key, received.data, headers)
        except BaseException:  # the object may have been written with the answer lost
            await self._claims.give_back(
                (*claimed.taken, record.key), lambda: self.catalog.holds_object(record)
            )
            raise
        return record

    async def _slot_held(self, record: Record) -> bool:
        slot = Slot(record.run_id, record.output_index, record.item_index)
        return await self.catalog.record(slot) is not None

    async def _create_object(self, key: str, data: bytes, headers: dict[str, str]) -> bool:
        try:
            await self.store.put(key, data, headers, if_absent=True)
        except ObjectExists:
            return False
        return True


class UploadStart:
    """Called with the first full part: where the parts of this media go."""

    def __init__(
        self,
        library: MediaLibrary,
        slot: Slot,
        header: storage_pb2.MediaHeader,
    ) -> None:
        self._library = library
        self._slot = slot
        self._header = header
        self.existing: Record | None = None
        """The record this write repeats, found before its first part would have gone out."""
        self.upload: MultipartUpload | None = None

    async def __call__(self, sniffed: Probe) -> PartSink:
        self.existing = await self._library.stored(self._slot, self._header.idempotency_key)
        if self.existing is not None:
            return Discard()  # a repeat: hashed for the comparison, not uploaded
        probe = effective_probe(sniffed, self._header)
        key = self._slot.media_key(probe.format)
        self.upload = await self._library.start_upload(key, records.object_headers(self._header, probe))
        return self.upload


async def _nothing() -> None:
    return None


def same_content_or_refuse(existing: Record, sha256: str) -> Record:
    """The existing record when it holds these bytes; ALREADY_EXISTS when it holds others."""
    if existing.descriptor.sha256 == sha256:
        return existing
    raise ServiceError(
        grpc.StatusCode.ALREADY_EXISTS,
        f"media {existing.media_id} already holds different content (sha256 {existing.descriptor.sha256})",
        reason="MEDIA_EXISTS",
        metadata={"media_id": existing.media_id, "sha256": existing.descriptor.sha256},
    )
