"""Claiming a slot (and its idempotency key) for one write, in one round trip when nobody competes.

The record, created with ``If-None-Match: *``, decides who owns the slot; the
idempotency marker, created the same way, decides who owns the key; and the
run is looked up again in case it was deleted while the bytes arrived. These
three requests go out together: in the common case all succeed and the write
waits for one MinIO round trip instead of three. The rare outcomes are
settled afterwards, always ending in one owner per slot and per key:

* key taken for another slot: the slot is given back and the write takes the
  careful path (key first, waiting for the key's writer, then the slot);
* key taken for this very slot: the marker already says what ours would say;
* slot taken: the key is given back unless the slot's owner holds that same
  key (the marker is then rightly the owner's); the owner's record answers;
* run gone, or MinIO failing: whatever was taken is given back.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import NoReturn

import grpc

from mediagen.scaffold import ServiceError
from mediagen.v1 import storage_pb2
from storage_service import records
from storage_service.catalog import MediaCatalog
from storage_service.layout import Slot, idempotency_key
from storage_service.store import ObjectExists, ObjectStore, finish_anyway

JSON = {"Content-Type": "application/json"}
# A taken idempotency key whose record has not appeared: how long to wait for its writer,
# and after how long the marker counts as left by a writer that died mid-commit.
COMMIT_WAIT_STEP = 0.05
COMMIT_WAIT_ROUNDS = 40
STALE_MARKER_SECONDS = 60.0


@dataclass
class Claim:
    """``existing`` set: the slot or key is someone else's, write nothing. Else ``taken`` is ours."""

    existing: storage_pb2.MediaRecord | None = None
    taken: list[str] = field(default_factory=list)


class SlotClaims:
    def __init__(self, store: ObjectStore, catalog: MediaCatalog) -> None:
        self.store = store
        self.catalog = catalog

    async def claim(self, record: storage_pb2.MediaRecord, key: str) -> Claim:
        slot = Slot(record.run_id, record.output_index, record.item_index)
        marker = idempotency_key(slot.run_id, key) if key else ""
        attempts = [self._create(slot.record_key, records.to_json(record)), self._run_still_there(slot)]
        if key:
            attempts.append(self._create(marker, marker_body(slot)))
        outcome = await asyncio.gather(*attempts, return_exceptions=True)
        slot_won, key_won = outcome[0] is True, bool(key) and outcome[-1] is True
        taken = [k for k, won in ((slot.record_key, slot_won), (marker, key_won)) if won]
        failure = next((r for r in outcome if isinstance(r, BaseException)), None)
        if failure is not None:
            await self._give_back(taken)
            raise failure
        if key and not key_won and await self._marked_slot(slot.run_id, key) != slot.media_id:
            await self._give_back(taken)
            return await self._one_by_one(record, key)
        if not slot_won:
            winner = await self.catalog.record(slot)
            if key_won and (winner is None or winner.idempotency_key != key):
                await self._give_back([marker])
            return Claim(existing=winner or _rolled_back(slot))
        return Claim(taken=taken)

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

    async def _give_back(self, keys: list[str]) -> None:
        if keys:
            await finish_anyway(self.store.remove(keys), f"giving back {', '.join(keys)}")

    async def _one_by_one(self, record: storage_pb2.MediaRecord, key: str) -> Claim:
        """Key first (waiting for a concurrent writer of it), then the slot."""
        slot = Slot(record.run_id, record.output_index, record.item_index)
        other = await self._claim_idempotency(slot, key)
        if other is not None:
            return Claim(existing=other)
        marker = idempotency_key(slot.run_id, key)
        if not await self._create(slot.record_key, records.to_json(record)):
            await self._give_back([marker])
            return Claim(existing=await self.catalog.record(slot) or _rolled_back(slot))
        return Claim(taken=[marker, slot.record_key])

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
        raise ServiceError(
            grpc.StatusCode.ABORTED,
            f"idempotency key {key!r} is being committed by a concurrent write; retry",
            reason="CONCURRENT_WRITE",
            metadata={"media_id": slot.media_id},
        )


def marker_body(slot: Slot) -> bytes:
    return json.dumps({"media_id": slot.media_id}).encode()


def _rolled_back(slot: Slot) -> NoReturn:
    raise ServiceError(
        grpc.StatusCode.ABORTED,
        f"a concurrent write of {slot.media_id} was rolled back while this one was committing; retry",
        reason="CONCURRENT_WRITE",
        metadata={"media_id": slot.media_id},
    )
