"""Which multipart uploads this process has open, written where every replica can see them.

A process killed mid-stream cannot abort its upload, S3 cannot say whose an
upload is, and a restarted MinIO lists an older upload only when asked for its
exact key. So for each upload it starts, a process writes a marker
``uploads/<instance>/<upload id>.json`` holding the exact key and upload id,
and removes it once the upload is completed or aborted. While it has any
upload open it also renews a lease ``instances/<instance>`` every period: one
object per process, so no replica ever read-modify-writes another's state. A
lease that stops changing means a dead process, whose marked uploads any
other replica then aborts (see :mod:`storage_service.store.reaper`).

The lease is written before the first marker and removed after the last one:
a process with nothing in flight keeps nothing in the bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

from storage_service.store.objects import ObjectStore

LEASES = "instances/"
MARKERS = "uploads/"
JSON = {"Content-Type": "application/json"}


def marker_key(instance: str, upload_id: str) -> str:
    return f"{MARKERS}{instance}/{upload_id}.json"


def instance_of(key: str) -> str:
    """The instance a lease or marker key belongs to."""
    return key.split("/")[1]


class InstanceLease:
    def __init__(self, store: ObjectStore, period: float) -> None:
        self.id = uuid.uuid4().hex
        self.period = period
        self._store = store
        self._open: set[str] = set()
        self._lock = asyncio.Lock()

    @property
    def key(self) -> str:
        return f"{LEASES}{self.id}"

    async def mark(self, key: str, upload_id: str) -> None:
        """Record an upload just started; the lease is taken first if this is the only one."""
        async with self._lock:
            if not self._open:
                await self._renew()
            self._open.add(upload_id)
        body = json.dumps({"key": key, "upload_id": upload_id}).encode()
        await self._store.put(marker_key(self.id, upload_id), body, JSON)

    async def unmark(self, upload_id: str) -> None:
        """Forget an upload that was completed or aborted; the last one gives the lease up."""
        if upload_id not in self._open:
            return  # another process's upload, aborted on its behalf: its marker is the reaper's
        try:
            await self._store.remove([marker_key(self.id, upload_id)])
        finally:
            async with self._lock:
                self._open.discard(upload_id)
                if not self._open:
                    with contextlib.suppress(Exception):
                        await self._store.remove([self.key])

    async def renew_if_held(self) -> None:
        """Called every period: the lease is kept fresh while any upload is open."""
        if self._open:
            await self._renew()

    async def _renew(self) -> None:
        await self._store.put(self.key, json.dumps({"instance": self.id}).encode(), JSON)
