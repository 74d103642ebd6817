"""Aborting the uploads of storage processes that died, by exact key and upload id.

Every replica sweeps at start-up and then every lease period. Markers are
listed before leases: a process writes its lease before its first marker, so
a marker whose lease is missing from the later listing belongs to a process
that is gone (or that already finished the upload; aborting then finds
nothing). A lease counts as dead once its last-modified time has not moved
for ``stale_periods`` periods *as this replica observed them*, over at least
that many sweeps: only MinIO's timestamps are compared with each other, so
clocks that disagree between hosts cannot make a live replica look dead. A
live replica's uploads are never touched as long as it renews its lease.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from storage_service.store.instances import LEASES, MARKERS, InstanceLease, instance_of
from storage_service.store.objects import ObjectStore

log = logging.getLogger("mediagen.storage.reaper")
PARALLEL = 8


@dataclass
class Sighting:
    modified: datetime
    since: float
    sweeps: int = 1


@dataclass(frozen=True)
class MarkedUpload:
    marker: str
    key: str
    upload_id: str


class OrphanReaper:
    def __init__(self, store: ObjectStore, lease: InstanceLease, stale_periods: int = 3) -> None:
        self._store = store
        self._lease = lease
        self._stale_periods = stale_periods
        self._seen: dict[str, Sighting] = {}

    async def sweep(self) -> int:
        """Abort the uploads of dead processes and drop their markers and leases; how many."""
        markers = await self._store.keys(MARKERS)
        leases = {instance_of(k): when for k, when in (await self._store.modified(LEASES)).items()}
        dead = self._dead(leases, {instance_of(m) for m in markers})
        if not dead:
            return 0
        orphans = await self.read([m for m in markers if instance_of(m) in dead])
        await self.abort(orphans)
        await self._store.remove([f"{LEASES}{i}" for i in dead if i in leases])
        if orphans:
            log.info("aborted %d uploads left by %d dead storage processes", len(orphans), len(dead))
        return len(orphans)

    async def of_prefix(self, prefix: str) -> list[MarkedUpload]:
        """Marked uploads (of any process) whose key is under ``prefix``."""
        found = await self.read(await self._store.keys(MARKERS))
        return [upload for upload in found if upload.key.startswith(prefix)]

    async def read(self, markers: list[str]) -> list[MarkedUpload]:
        gate = asyncio.Semaphore(PARALLEL)

        async def load(marker: str) -> MarkedUpload | None:
            async with gate:
                data = await self._store.get(marker)
            if data is None:
                return None
            body = json.loads(data)
            return MarkedUpload(marker, str(body["key"]), str(body["upload_id"]))

        return [m for m in await asyncio.gather(*(load(m) for m in markers)) if m is not None]

    async def abort(self, uploads: list[MarkedUpload]) -> None:
        """Abort each upload by exact key and id (gone already is fine), then drop its marker."""
        gate = asyncio.Semaphore(PARALLEL)

        async def one(upload: MarkedUpload) -> None:
            async with gate:
                await self._store.abort_upload(upload.key, upload.upload_id)

        await asyncio.gather(*(one(u) for u in uploads))
        await self._store.remove([u.marker for u in uploads])

    def _dead(self, leases: dict[str, datetime], marked: set[str]) -> set[str]:
        now, limit = time.monotonic(), self._lease.period * self._stale_periods
        dead = {i for i in marked if i not in leases and i != self._lease.id}
        for instance, modified in leases.items():
            seen = self._seen.get(instance)
            if seen is None or seen.modified != modified:
                self._seen[instance] = Sighting(modified, now)
            else:
                seen.sweeps += 1
                if (
                    instance != self._lease.id
                    and seen.sweeps > self._stale_periods
                    and now - seen.since > limit
                ):
                    dead.add(instance)
        for gone in set(self._seen) - set(leases):
            del self._seen[gone]
        return dead
