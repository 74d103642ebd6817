"""Claiming a slot (and its idempotency key) for one write, in one round trip when nobody competes.

The record, created with ``If-None-Match: *``, decides who owns the slot; the
idempotency marker, created the same way, decides who owns the key (a key that is
the slot's own media id, as the gateway's are, is owned with the record and has no
marker: :meth:`storage_service.layout.Slot.needs_marker`); and the
run is looked up again in case it was deleted while the bytes arrived. These
(two or) three requests go out together, so in the common case the claim costs one
MinIO round trip. What came back is settled into a :class:`Claim`, always
ending in one owner per slot and per key:

* something failed (MinIO, or the run is gone): whatever was taken is given back;
* the key is taken for another slot: the slot is given back and the claim is
  made again one thing at a time (key first, waiting for the key's writer);
* the slot is taken: the key is given back unless the slot's owner holds that
  same key; the owner's record is the answer (:attr:`Ownership.STORED`);
* otherwise the slot and key are this write's (:attr:`Ownership.OURS`).

Giving back is clean-up's (:meth:`storage_service.store.cleanup.UploadCleanup.give_back`):
it survives a cancelled caller and, retried by the sweep, a MinIO away.
"""

from __future__ import annotations

import asyncio
import enum
import json
from dataclasses import dataclass
from typing import NoReturn

import grpc

from mediagen.scaffold import ServiceError
from mediagen.v1 import storage_pb2
from storage_service import records
from storage_service.catalog import MediaCatalog
from storage_service.layout import Slot, idempotency_key
from storage_service.store import ObjectExists, ObjectStore
from storage_service.store.cleanup import UploadCleanup

JSON = {"Content-Type": "application/json"}
# A taken idempotency key whose record has not appeared: how long to wait for its writer,
# and after how long the marker counts as left by a writer that died mid-commit.
COMMIT_WAIT_STEP = 0.05
COMMIT_WAIT_ROUNDS = 40
STALE_MARKER_SECONDS = 60.0


class Ownership(enum.Enum):
    OURS = "ours"  # this write owns the slot (and key): it writes the object
    STORED = "stored"  # the slot or key already holds a record: answer from it, write nothing


@dataclass(frozen=True)
class Claim:
    ownership: Ownership
    taken: tuple[str, ...] = ()  # keys this claim created, to give back if the write fails
    existing: storage_pb2.MediaRecord | None = None

    @classmethod
    def ours(cls, *taken: str) -> Claim:
        return cls(Ownership.OURS, taken=taken)

    @classmethod
    def stored(cls, record: storage_pb2.MediaRecord) -> Claim:
        return cls(Ownership.STORED, existing=record)


@dataclass(frozen=True)
class Attempt:
    """What the three requests of a claim found."""

    slot_won: bool
    key_won: bool
    failure: BaseException | None


class SlotClaims:
    def __init__(self, store: ObjectStore, catalog: MediaCatalog, cleanup: UploadCleanup) -> None:
        self.store = store
        self.catalog = catalog
        self.give_back = cleanup.give_back

    async def claim(self, record: storage_pb2.MediaRecord, key: str) -> Claim:
        slot = Slot(record.run_id, record.output_index, record.item_index)
        marker = idempotency_key(slot.run_id, key) if slot.needs_marker(key) else ""
        attempt = await self._all_at_once(slot, record, marker)
        taken = [k for k, won in ((slot.record_key, attempt.slot_won), (marker, attempt.key_won)) if won]
        if attempt.failure is not None:
            await self.give_back(taken)
            raise attempt.failure
        if marker and not attempt.key_won and await self._marked_slot(slot.run_id, key) != slot.media_id:
            await self.give_back(taken)
            return await self._one_by_one(record, key)
        if not attempt.slot_won:
            winner = await self.catalog.record(slot)
            if attempt.key_won and (winner is None or winner.idempotency_key != key):
                await self.give_back([marker])
            return Claim.stored(winner or _rolled_back(slot))
        return Claim.ours(*taken)

    async def _all_at_once(self, slot: Slot, record: storage_pb2.MediaRecord, marker: str) -> Attempt:
        attempts = [self._create(slot.record_key, records.to_json(record)), self._run_still_there(slot)]
        if marker:
            attempts.append(self._create(marker, marker_body(slot)))
        outcome = await asyncio.gather(*attempts, return_exceptions=True)
        failure = next((r for r in outcome if isinstance(r, BaseException)), None)
        return Attempt(outcome[0] is True, bool(marker) and outcome[-1] is True, failure)

    async def _create(self, key: str, body: bytes) -> bool:
        try:
            await self.store.put(key, body, JSON, if_absent=True)
        except ObjectExists:
            return False
        return True

    async def _run_still_there(self, slot: Slot) -> bool:
        await self.catalog.require_run(slot.run_id)
        return True

    async def _marked_slot(self, run_id: str, key: str) -> str | None:
        data = await self.store.get(idempotency_key(run_id, key))
        return str(json.loads(data)["media_id"]) if data is not None else None

    async def _one_by_one(self, record: storage_pb2.MediaRecord, key: str) -> Claim:
        """Key first (waiting for a concurrent writer of it), then the slot."""
        slot = Slot(record.run_id, record.output_index, record.item_index)
        other = await self._claim_idempotency(slot, key)
        if other is not None:
            return Claim.stored(other)
        marker = idempotency_key(slot.run_id, key)
        if not await self._create(slot.record_key, records.to_json(record)):
            await self.give_back([marker])
            return Claim.stored(await self.catalog.record(slot) or _rolled_back(slot))
        return Claim.ours(marker, slot.record_key)

    async def _claim_idempotency(self, slot: Slot, key: str) -> storage_pb2.MediaRecord | None:
        """None once ``key`` is ours; else the record it already points to."""
        marker = idempotency_key(slot.run_id, key)
        if await self._create(marker, marker_body(slot)):
            return None
        other = await self._await_idempotent_record(slot, key)
        if other is not None:
            return other
        await self.store.put(marker, marker_body(slot), JSON)  # left by a writer that died mid-commit
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
        what = f"idempotency key {key!r} is being committed by a concurrent write"
        raise concurrent_write(slot.media_id, what)


def marker_body(slot: Slot) -> bytes:
    return json.dumps({"media_id": slot.media_id}).encode()


def concurrent_write(media_id: str, what: str) -> ServiceError:
    """Another write of the same media is in the way (in flight, or being undone): asking again
    shortly is the answer, so ABORTED, the caller's cue to retry."""
    return ServiceError(
        grpc.StatusCode.ABORTED, f"{what}; retry", reason="CONCURRENT_WRITE", metadata={"media_id": media_id}
    )


def _rolled_back(slot: Slot) -> NoReturn:
    raise concurrent_write(
        slot.media_id, f"a concurrent write of {slot.media_id} was rolled back while this one was committing"
    )
