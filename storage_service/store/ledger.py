"""Which multipart uploads this process may have open, written where every replica can see them.

S3 cannot say whose an upload is, a process killed mid-stream cannot abort
its upload, and a CreateMultipartUpload whose answer was lost leaves an
upload nobody knows the id of. So before it asks S3 for an upload, a process
writes a marker ``uploads/<key>/<instance>.<token>``: the exact key is in the
marker's name, and an upload can only exist for a key that has a marker.
The marker is removed once the upload is known to be completed or aborted.

While it holds any marker, a process also renews a lease
``instances/<instance>`` every period: one object per process, so no
replica ever read-modify-writes another's state. A lease that stops changing
means a dead process, whose markers any other replica then releases (see
:mod:`storage_service.store.cleanup`). The lease is written before the first
marker and removed after the last one: a process with nothing in flight
keeps nothing in the bucket.

Each upload this process opens is an :class:`OpenUpload` whose
:class:`Phase` says what its marker still stands for.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import uuid
from dataclasses import dataclass

from storage_service.store.objects import ObjectStore

LEASES = "instances/"
MARKERS = "uploads/"
JSON = {"Content-Type": "application/json"}


class Phase(enum.Enum):
    CREATING = "creating"  # marker written, the upload being created (its id not known yet)
    WRITING = "writing"  # the upload exists and its owner is sending parts
    COMPLETED = "completed"  # the object is complete: only the marker is left to remove
    ABANDONED = "abandoned"  # the owner gave up: whatever upload exists must be aborted
    RELEASING = "releasing"  # clean-up of this marker is under way


@dataclass
class OpenUpload:
    key: str
    marker: str
    phase: Phase = Phase.CREATING
    upload_id: str | None = None


@dataclass(frozen=True)
class Marker:
    """A marker found in the bucket, of any process."""

    name: str
    key: str
    instance: str

    @classmethod
    def parse(cls, name: str) -> Marker:
        key, _, leaf = name[len(MARKERS) :].rpartition("/")
        return cls(name, key, leaf.split(".", 1)[0])


def markers_of(key: str) -> str:
    """The prefix under which every process's markers for ``key`` are."""
    return f"{MARKERS}{key}/"


def instance_of_lease(name: str) -> str:
    return name[len(LEASES) :]


class UploadLedger:
    def __init__(self, store: ObjectStore, period: float) -> None:
        self.instance = uuid.uuid4().hex
        self.period = period
        self._store = store
        self._open: dict[str, OpenUpload] = {}  # by marker name
        self._lock = asyncio.Lock()
        self._leased = False

    @property
    def lease(self) -> str:
        return f"{LEASES}{self.instance}"

    def new(self, key: str) -> OpenUpload:
        """An entry for an upload of ``key`` about to be created; nothing written yet."""
        entry = OpenUpload(key, f"{markers_of(key)}{self.instance}.{uuid.uuid4().hex}")
        self._open[entry.marker] = entry
        return entry

    async def mark(self, entry: OpenUpload) -> None:
        """Write the entry's marker, the lease first if it is not held yet."""
        async with self._lock:
            if not self._leased:
                await self._renew()
                self._leased = True
        await self._store.put(entry.marker, b"", JSON)

    def in_phase(self, *phases: Phase) -> list[OpenUpload]:
        return [entry for entry in self._open.values() if entry.phase in phases]

    def holds(self, marker: str) -> bool:
        """Whether ``marker`` is one of this process's uploads still being written."""
        entry = self._open.get(marker)
        return entry is not None and entry.phase in (Phase.CREATING, Phase.WRITING)

    async def forget(self, entry: OpenUpload) -> None:
        """Drop an entry whose marker is gone; the last one gives the lease up."""
        async with self._lock:
            self._open.pop(entry.marker, None)
            if not self._open and self._leased:
                self._leased = False
                with contextlib.suppress(Exception):  # a lease left behind only ever looks dead
                    await self._store.remove([self.lease])

    async def renew_if_held(self) -> None:
        """Called every period: the lease is kept fresh while any marker is held."""
        if self._open:
            await self._renew()

    async def _renew(self) -> None:
        await self._store.put(self.lease, json.dumps({"instance": self.instance}).encode(), JSON)
