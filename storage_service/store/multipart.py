"""One multipart upload, driven part by part and never left behind.

minio-py's ``put_object`` aborts only when its reader raises an ``Exception``;
a cancelled caller (``CancelledError``) would orphan the upload, and its
parallel part pool can leak threads. Here the service drives the S3 calls
itself: at most ``in_flight`` parts are uploading while the next one fills,
and :meth:`discard` (called on every exit that is not a completed upload)
waits for parts still running and aborts, shielded from cancellation.
"""

from __future__ import annotations

import asyncio
import collections

import grpc
from minio.datatypes import Part

from mediagen.scaffold import ServiceError
from storage_service.store.background import finish_anyway
from storage_service.store.errors import ObjectMissing
from storage_service.store.objects import ObjectStore


class MultipartUpload:
    def __init__(self, store: ObjectStore, key: str, upload_id: str, in_flight: int) -> None:
        self.store = store
        self.key = key
        self.upload_id = upload_id
        self._in_flight = in_flight
        self._pending: collections.deque[asyncio.Task[Part]] = collections.deque()
        self._parts: list[Part] = []
        self._finished = False

    @classmethod
    async def begin(
        cls, store: ObjectStore, key: str, headers: dict[str, str], in_flight: int
    ) -> MultipartUpload:
        return cls(store, key, await store.start_upload(key, headers), in_flight)

    async def add(self, data: bytes) -> None:
        try:
            await self._add(data)
        except ObjectMissing:
            raise upload_gone(self.key) from None

    async def _add(self, data: bytes) -> None:
        """Queue the next part; waits while ``in_flight`` parts are still uploading."""
        while len(self._pending) >= self._in_flight:
            self._parts.append(await self._pending[0])
            self._pending.popleft()
        number = len(self._parts) + len(self._pending) + 1
        self._pending.append(
            asyncio.ensure_future(self.store.upload_part(self.key, self.upload_id, number, data))
        )

    async def complete(self) -> None:
        try:
            while self._pending:
                self._parts.append(await self._pending[0])
                self._pending.popleft()
            await self.store.complete_upload(self.key, self.upload_id, self._parts)
        except ObjectMissing:
            raise upload_gone(self.key) from None
        self._finished = True

    async def discard(self) -> None:
        """Abort unless completed; runs to the end even if the caller is cancelled."""
        if not self._finished:
            self._finished = True
            await finish_anyway(self._abort(), f"aborting the upload of {self.key}")

    async def _abort(self) -> None:
        if self._pending:
            await asyncio.wait(self._pending)
            for part in self._pending:
                if not part.cancelled():
                    part.exception()  # retrieved, so asyncio does not warn about it
        await self.store.abort_upload(self.key, self.upload_id)


def upload_gone(key: str) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.ABORTED,
        f"the upload of {key} was aborted by someone else (was its run deleted?)",
        reason="UPLOAD_ABORTED",
    )
