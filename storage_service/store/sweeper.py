"""Aborting multipart uploads that nobody will finish.

A service process killed mid-stream cannot abort its upload. Whoever runs
next aborts unfinished uploads under ``runs/`` that are older than a grace
age and not this process's own, at start-up and then once a minute with the
health checks. The age keeps a sweep from cutting off the live uploads of
other replicas sharing the bucket; a single replica can set it to zero.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from storage_service.store.objects import ObjectStore

log = logging.getLogger("mediagen.storage.sweeper")


class UploadSweeper:
    def __init__(self, store: ObjectStore, older_than: timedelta, every: float = 60.0) -> None:
        self._store = store
        self._older_than = older_than
        self._every = every
        self._last = float("-inf")

    async def sweep(self) -> int:
        """Abort abandoned uploads now; how many were aborted."""
        self._last = time.monotonic()
        aborted = 0
        for key, upload_id in await self._store.uploads("runs/", self._older_than):
            if upload_id not in self._store.live_uploads:
                await self._store.abort_upload(key, upload_id)
                aborted += 1
        if aborted:
            log.info("aborted %d abandoned multipart uploads", aborted)
        return aborted

    async def sweep_when_due(self) -> None:
        if time.monotonic() - self._last >= self._every:
            await self.sweep()
