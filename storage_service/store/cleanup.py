"""The one way an unfinished multipart upload goes away: its marker is released.

Every upload is preceded by a marker naming its exact key (see
:mod:`storage_service.store.ledger`). Releasing a marker means: abort the
upload it stands for, then remove the marker. All clean-up goes through
:meth:`UploadCleanup.release`:

* an owner that gives up (caller gone, bad bytes, MinIO failing, a lost
  claim) calls :meth:`UploadCleanup.abandon`, which releases at once in a
  task of its own, so a cancelled caller cannot cut it short;
* :meth:`UploadCleanup.sweep`, every lease period, releases what is still
  owed: this process's abandoned markers whose release failed (MinIO was
  away), and the markers of processes whose lease went stale (killed);
* deleting a run releases every marker under the run's keys, live or not.

Claims a failed write gives back (see :mod:`storage_service.claims`) are
removed the same way, as an :class:`Undo`: at once in a task of their own,
and by the sweep while MinIO is away. A write whose last request may have
taken effect with its answer lost gives back with a check: once MinIO
answers, the keys are kept if the write turns out done. Until settled, a
repeat of the write is answered only if the object is the record's (see
:mod:`storage_service.media`); and no other write can replace the record,
since records are created with ``If-None-Match: *``, so removing it later
cannot remove anyone else's.

When the upload id is known (this process created it), exactly that upload
is aborted. When it is not (another process's marker, or a create whose
answer was lost), the uploads of the exact key are listed and aborted, but
only if no live process holds a marker for that key: markers are written
before uploads are created, so markers listed *after* the uploads show every
live writer of those uploads. A key with a live writer waits for a later
sweep.

A lease counts as dead once its last-modified time has not moved for
``stale_periods`` periods *as this replica observed them*, over at least
that many sweeps: only MinIO's timestamps are compared with each other, so
clocks that disagree between hosts cannot make a live replica look dead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage_service.store.ledger import (
    LEASES,
    MARKERS,
    Marker,
    OpenUpload,
    Phase,
    UploadLedger,
    instance_of_lease,
    markers_of,
)
from storage_service.store.objects import ObjectStore
from storage_service.store.uploads import S3Uploads

log = logging.getLogger("mediagen.storage.cleanup")
PARALLEL = 8
PARTS_GRACE = 5.0


@dataclass(frozen=True, eq=False)
class Undo:
    """Keys a failed write gives back, unless ``done`` finds that write took effect after all."""

    keys: tuple[str, ...]
    done: Callable[[], Awaitable[bool]] | None = None


@dataclass
class Sighting:
    modified: datetime
    since: float
    sweeps: int = 1


class UploadCleanup:
    def __init__(
        self, store: ObjectStore, uploads: S3Uploads, ledger: UploadLedger, stale_periods: int = 3
    ) -> None:
        self._store = store
        self._uploads = uploads
        self.ledger = ledger
        self._stale_periods = stale_periods
        self._seen: dict[str, Sighting] = {}
        self._running: set[asyncio.Task[bool]] = set()
        self._owed: list[Undo] = []  # claims given back while MinIO failed

    def abandon(self, entry: OpenUpload, in_flight: Collection[asyncio.Future[Any]] = ()) -> None:
        """The owner gives ``entry`` up: release it now, and by the sweep if that fails.

        Parts still uploading get up to :data:`PARTS_GRACE` seconds to end first
        (an abort racing a part may leave the part behind); a part that hangs on
        an unanswering MinIO does not hold the abort back longer.
        """
        if entry.phase in (Phase.CREATING, Phase.WRITING):
            entry.phase = Phase.ABANDONED
        self._soon(entry, in_flight)

    def completed(self, entry: OpenUpload) -> None:
        """The upload is complete: only its marker is left to remove."""
        entry.phase = Phase.COMPLETED
        self._soon(entry)

    async def give_back(self, keys: Iterable[str], done: Callable[[], Awaitable[bool]] | None = None) -> None:
        """Remove claimed keys now, in a task a cancelled caller cannot cut short; else by the sweep."""
        undo = Undo(tuple(keys), done)
        if undo.keys:
            self._owed.append(undo)
            task = asyncio.get_running_loop().create_task(self._settle(undo))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            await asyncio.shield(task)

    async def _settle(self, undo: Undo) -> bool:
        try:
            if undo.done is None or not await undo.done():
                await self._store.remove(undo.keys)
        except Exception as exc:  # noqa: BLE001 - owed still; the next sweep tries again
            log.debug("giving back %s failed, the next sweep retries: %s", ", ".join(undo.keys), exc)
            return False
        if undo in self._owed:
            self._owed.remove(undo)
        return True

    async def sweep(self) -> int:
        """Release what is owed: claims, own markers not yet released, and dead processes' markers."""
        for undo in list(self._owed):
            await self._settle(undo)
        own = self.ledger.in_phase(Phase.ABANDONED, Phase.COMPLETED)
        released = sum(await asyncio.gather(*(self._release_own(entry) for entry in own)))
        markers = await self._markers_under(MARKERS)
        leases = {instance_of_lease(k): when for k, when in (await self._store.modified(LEASES)).items()}
        dead = self._dead(leases, {m.instance for m in markers})
        if not dead:
            return released
        by_key: dict[str, list[Marker]] = defaultdict(list)
        for marker in markers:
            if marker.instance in dead:
                by_key[marker.key].append(marker)
        gate = asyncio.Semaphore(PARALLEL)

        async def one(key: str) -> bool:
            async with gate:
                return await self.release(key, {m.name for m in by_key[key]}, dead)

        outcome = dict(zip(by_key, await asyncio.gather(*(one(k) for k in by_key)), strict=True))
        waiting = {m.instance for key, ok in outcome.items() if not ok for m in by_key[key]}
        await self._store.remove([f"{LEASES}{i}" for i in dead if i in leases and i not in waiting])
        orphans = sum(len(by_key[key]) for key, ok in outcome.items() if ok)
        if orphans:
            log.info("released %d uploads left by %d dead storage processes", orphans, len(dead))
        return released + orphans

    async def release_run(self, prefix: str) -> None:
        """Abort every upload marked under ``prefix`` (live ones too: the run is being deleted)."""
        by_key: dict[str, set[str]] = defaultdict(set)
        for marker in await self._markers_under(f"{MARKERS}{prefix}"):
            by_key[marker.key].add(marker.name)
        for key, names in by_key.items():
            await self.release(key, names, dead=set(), force=True)

    async def release(self, key: str, names: set[str], dead: set[str], force: bool = False) -> bool:
        """Abort the uploads of ``key`` and remove the markers ``names``; False if a live writer holds it.

        ``dead`` are instances known dead; ``force`` aborts even uploads of live writers.
        """
        upload_ids = await self._uploads.of_key(key)
        if not force and upload_ids:
            holders = await self._markers_under(markers_of(key))
            if any(self._is_live(m, names, dead) for m in holders):
                return False
        for upload_id in upload_ids:
            await self._uploads.abort(key, upload_id)
        await self._store.remove(sorted(names))
        return True

    async def close(self, limit: float) -> None:
        """Let releases started by cancelled calls finish before the clients close."""
        await asyncio.sleep(0)
        if self._running:
            await asyncio.wait(set(self._running), timeout=limit)

    def _soon(self, entry: OpenUpload, in_flight: Collection[asyncio.Future[Any]] = ()) -> None:
        async def release() -> bool:
            if in_flight:
                await asyncio.wait(in_flight, timeout=PARTS_GRACE)
            return await self._release_own(entry)

        task = asyncio.get_running_loop().create_task(release())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _release_own(self, entry: OpenUpload) -> bool:
        """One of this process's markers: abort its upload (by id when known) and remove it."""
        if entry.phase not in (Phase.ABANDONED, Phase.COMPLETED):
            return False  # already being released, or taken back
        owed, entry.phase = entry.phase, Phase.RELEASING
        try:
            if owed is Phase.COMPLETED:
                await self._store.remove([entry.marker])
            elif entry.upload_id is not None:
                await self._uploads.abort(entry.key, entry.upload_id)
                await self._store.remove([entry.marker])
            elif not await self.release(entry.key, {entry.marker}, dead=set()):
                entry.phase = owed
                return False
        except Exception as exc:  # noqa: BLE001 - owed still; the next sweep tries again
            entry.phase = owed
            log.debug("releasing %s failed, the next sweep retries: %s", entry.marker, exc)
            return False
        except BaseException:
            entry.phase = owed
            raise
        await self.ledger.forget(entry)
        return True

    def _is_live(self, marker: Marker, releasing: set[str], dead: set[str]) -> bool:
        if marker.name in releasing or marker.instance in dead:
            return False
        if marker.instance == self.ledger.instance:
            return self.ledger.holds(marker.name)
        return True

    async def _markers_under(self, prefix: str) -> list[Marker]:
        return [Marker.parse(name) for name in await self._store.keys(prefix)]

    def _dead(self, leases: dict[str, datetime], marked: set[str]) -> set[str]:
        now, limit = time.monotonic(), self.ledger.period * self._stale_periods
        dead = {i for i in marked if i not in leases and i != self.ledger.instance}
        for instance, modified in leases.items():
            seen = self._seen.get(instance)
            if seen is None or seen.modified != modified:
                self._seen[instance] = Sighting(modified, now)
            else:
                seen.sweeps += 1
                if (
                    instance != self.ledger.instance
                    and seen.sweeps > self._stale_periods
                    and now - seen.since > limit
                ):
                    dead.add(instance)
        for gone in set(self._seen) - set(leases):
            del self._seen[gone]
        return dead
