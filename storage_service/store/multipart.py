"""One multipart upload, driven part by part and never left behind.

minio-py's ``put_object`` aborts only when its reader raises an ``Exception``;
a cancelled caller (``CancelledError``) would orphan the upload, and its
parallel part pool can leak threads. Here the service drives the S3 calls
itself: at most ``in_flight`` parts are uploading while the next one fills.
The upload's marker is written before the upload is created (see
:mod:`storage_service.store.ledger`), and every exit that is not a completed
upload hands the marker to :mod:`storage_service.store.cleanup` through
:meth:`discard`, which needs no await to take effect, so cancellation cannot
cut it short.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping

import grpc
from minio.datatypes import Part

from mediagen.scaffold import ServiceError
from storage_service.store.cleanup import UploadCleanup
from storage_service.store.errors import ObjectMissing
from storage_service.store.ledger import OpenUpload, Phase
from storage_service.store.uploads import PartBody, S3Uploads


class MultipartUpload:
    def __init__(self, uploads: S3Uploads, cleanup: UploadCleanup, entry: OpenUpload, in_flight: int) -> None:
        self._uploads = uploads
        self._cleanup = cleanup
        self._entry = entry
        self._in_flight = in_flight
        self._pending: collections.deque[asyncio.Task[Part]] = collections.deque()
        self._parts: list[Part] = []

    @property
    def key(self) -> str:
        return self._entry.key

    @classmethod
    async def begin(
        cls,
        uploads: S3Uploads,
        cleanup: UploadCleanup,
        key: str,
        headers: Mapping[str, str],
        in_flight: int,
    ) -> MultipartUpload:
        """Marker first, then CreateMultipartUpload: an upload never exists without a marker."""
        entry = cleanup.ledger.new(key)
        try:
            await cleanup.ledger.mark(entry)
            entry.upload_id = await uploads.create(key, headers)
        except BaseException:
            cleanup.abandon(entry)  # the create may have happened with its answer lost
            raise
        entry.phase = Phase.WRITING
        return cls(uploads, cleanup, entry, in_flight)

    async def add(self, data: PartBody) -> None:
        """Queue the next part; waits while ``in_flight`` parts are still uploading."""
        try:
            while len(self._pending) >= self._in_flight:
                self._parts.append(await self._pending[0])
                self._pending.popleft()
        except ObjectMissing:
            raise upload_gone(self.key) from None
        number = len(self._parts) + len(self._pending) + 1
        assert self._entry.upload_id is not None
        self._pending.append(
            asyncio.ensure_future(self._uploads.upload_part(self.key, self._entry.upload_id, number, data))
        )

    async def complete(self) -> None:
        assert self._entry.upload_id is not None
        try:
            while self._pending:
                self._parts.append(await self._pending[0])
                self._pending.popleft()
            await self._uploads.complete(self.key, self._entry.upload_id, self._parts)
        except ObjectMissing:
            raise upload_gone(self.key) from None
        self._cleanup.completed(self._entry)

    def discard(self) -> None:
        """Give the upload up unless completed: clean-up aborts it once the parts in flight end."""
        if self._entry.phase is not Phase.WRITING:
            return
        for part in self._pending:
            part.add_done_callback(_retrieved)
        self._cleanup.abandon(self._entry, in_flight=list(self._pending))


def _retrieved(part: asyncio.Future[Part]) -> None:
    if not part.cancelled():
        part.exception()  # retrieved, so asyncio does not warn about it


def upload_gone(key: str) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.ABORTED,
        f"the upload of {key} was aborted by someone else (was its run deleted?)",
        reason="UPLOAD_ABORTED",
    )
