"""The bucket, as the rest of the service sees it: async calls on keys.

Blocking minio-py calls run in a pool of our own (bounded, named threads, shut
down with the service) rather than asyncio's default executor, so MinIO I/O
never starves other users of ``to_thread`` and the thread count stays fixed
however many streams are in flight. A call that finds MinIO unreachable
reports it to health at once. Multipart uploads and conditional writes use
minio-py's underscore methods: it has no public API for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from minio import Minio
from minio.datatypes import Part, Upload
from minio.deleteobjects import DeleteObject
from minio.helpers import md5sum_hash
from minio.xml import Element, SubElement, getbytes

from storage_service.store.background import wait_for_cleanups
from storage_service.store.errors import ObjectExists, ObjectMissing, classify, is_outage

T = TypeVar("T")
OutageReporter = Callable[[str], Awaitable[None]]
IF_ABSENT = {"If-None-Match": "*"}


class ObjectStore:
    def __init__(self, client: Minio, presigner: Minio, bucket: str, threads: int) -> None:
        self.client = client
        self.bucket = bucket
        self._presigner = presigner
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="storage-io")
        self._report: OutageReporter | None = None
        self._unaborted: set[tuple[str, str]] = set()
        self.live_uploads: set[str] = set()  # upload ids this process is still writing

    def on_outage(self, report: OutageReporter) -> None:
        self._report = report

    async def close(self) -> None:
        await wait_for_cleanups(limit=30.0)
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(self._pool.shutdown, True))
        self.client._http.clear()

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))
        except Exception as exc:
            replacement = classify(exc)
            if replacement is None:
                raise
            if is_outage(replacement) and self._report:
                await self._report(str(replacement))
            raise replacement from exc

    async def ensure_bucket(self) -> None:
        """The health check: the bucket answers (created if missing); then retry owed aborts."""
        if not await self.call(self.client.bucket_exists, self.bucket):
            await self.call(self.client.make_bucket, self.bucket)
        for key, upload_id in list(self._unaborted):
            await self.abort_upload(key, upload_id)

    async def put(
        self, key: str, data: bytes, headers: Mapping[str, str], *, if_absent: bool = False
    ) -> None:
        """Write ``data`` at ``key``; with ``if_absent``, raise :class:`ObjectExists` if taken."""
        sent = {**headers, **(IF_ABSENT if if_absent else {})}
        await self.call(self.client._put_object, self.bucket, key, data, sent)

    async def get(self, key: str) -> bytes | None:
        try:
            return await self.call(self._read_all, key)
        except ObjectMissing:
            return None

    def _read_all(self, key: str) -> bytes:
        response = self.client.get_object(self.bucket, key)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    async def exists(self, key: str) -> bool:
        try:
            await self.call(self.client.stat_object, self.bucket, key)
        except ObjectMissing:
            return False
        return True

    async def age(self, key: str) -> float | None:
        """Seconds since ``key`` was written; None if it does not exist."""
        try:
            stat = await self.call(self.client.stat_object, self.bucket, key)
        except ObjectMissing:
            return None
        if stat.last_modified is None:
            return None
        return (datetime.now(UTC) - stat.last_modified).total_seconds()

    async def keys(self, prefix: str) -> list[str]:
        def listing() -> list[str]:
            return [o.object_name for o in self.client.list_objects(self.bucket, prefix, recursive=True)]

        return await self.call(listing)

    async def remove(self, keys: Iterable[str]) -> None:
        def delete_all(batch: list[str]) -> None:
            errors = list(self.client.remove_objects(self.bucket, (DeleteObject(k) for k in batch)))
            if errors:
                raise OSError(f"{len(errors)} objects could not be deleted: {errors[0].code}")

        batch = list(keys)
        if batch:
            await self.call(delete_all, batch)

    async def read_chunks(self, key: str, chunk_size: int) -> AsyncGenerator[bytes, None]:
        """The object's bytes, one chunk read per request from the caller."""
        try:
            response = await self.call(self.client.get_object, self.bucket, key)
        except ObjectMissing:
            return
        try:
            while chunk := await self.call(response.read, chunk_size):
                yield chunk
        finally:
            response.close()
            response.release_conn()

    def presign(self, key: str, ttl: timedelta) -> str:
        return str(self._presigner.presigned_get_object(self.bucket, key, expires=ttl))

    async def start_upload(self, key: str, headers: Mapping[str, str]) -> str:
        upload_id = await self.call(self.client._create_multipart_upload, self.bucket, key, dict(headers))
        self.live_uploads.add(upload_id)
        return upload_id

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        etag = await self.call(self.client._upload_part, self.bucket, key, data, None, upload_id, number)
        return Part(number, etag)

    async def complete_upload(self, key: str, upload_id: str, parts: list[Part]) -> None:
        element = Element("CompleteMultipartUpload")
        for part in parts:
            tag = SubElement(element, "Part")
            SubElement(tag, "PartNumber", str(part.part_number))
            SubElement(tag, "ETag", f'"{part.etag}"')
        body = getbytes(element)
        headers = {"Content-Type": "application/xml", "Content-MD5": str(md5sum_hash(body))}
        query = {"uploadId": upload_id}
        await self.call(
            self.client._execute, "POST", self.bucket, key, body=body, headers=headers, query_params=query
        )
        self.live_uploads.discard(upload_id)

    async def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort; while MinIO is unreachable the abort is owed and retried once it is back."""
        self._unaborted.add((key, upload_id))
        with contextlib.suppress(ObjectMissing):
            await self.call(self.client._abort_multipart_upload, self.bucket, key, upload_id)
        self._unaborted.discard((key, upload_id))
        self.live_uploads.discard(upload_id)

    async def uploads(self, prefix: str, older_than: timedelta | None = None) -> list[tuple[str, str]]:
        """(key, upload id) of unfinished multipart uploads under ``prefix`` (started before a while ago).

        MinIO matches a ListMultipartUploads prefix against whole keys only, so
        the bucket's uploads are listed in full and filtered here.
        """
        cutoff = datetime.now(UTC) - older_than if older_than is not None else None
        found = await self.call(self._all_uploads)
        return [
            (u.object_name, u.upload_id)
            for u in found
            if u.object_name.startswith(prefix)
            and u.upload_id
            and (cutoff is None or (u.initiated_time is not None and u.initiated_time <= cutoff))
        ]

    def _all_uploads(self) -> list[Upload]:
        uploads: list[Upload] = []
        key_marker = upload_marker = None
        while True:
            page = self.client._list_multipart_uploads(
                self.bucket, key_marker=key_marker, upload_id_marker=upload_marker
            )
            uploads.extend(page.uploads)
            if not page.is_truncated:
                return uploads
            key_marker, upload_marker = page.next_key_marker, page.next_upload_id_marker


__all__ = ["ObjectExists", "ObjectStore"]
