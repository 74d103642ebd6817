"""The bucket, as the rest of the service sees it: async calls on keys.

Blocking minio-py calls run in a pool of our own (bounded, named threads, shut
down with the service) rather than asyncio's default executor, so MinIO I/O
never starves other users of ``to_thread`` and the thread count stays fixed
however many streams are in flight. A call that finds MinIO unreachable
reports it to health at once. Conditional writes use minio-py's underscore
methods (it has no public API for them); multipart calls are in
:mod:`storage_service.store.uploads`.

"Nothing is stored twice" rests on ``If-None-Match: *`` being honoured, so
:meth:`ObjectStore.check_conditional_writes` tries it once before the
service serves (see :mod:`storage_service.app`).
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject

from mediagen.scaffold import tracing
from storage_service.store.errors import ObjectExists, ObjectMissing, classify, is_outage

T = TypeVar("T")
OutageReporter = Callable[[str], Awaitable[None]]
IF_ABSENT = {"If-None-Match": "*"}
CONDITIONAL_CHECK = ".mediagen/conditional-write-check/"


class ConditionalWritesUnsupported(Exception):
    """The S3 server overwrote an object despite ``If-None-Match: *``."""


class ObjectStore:
    def __init__(
        self, client: Minio, presigner: Minio, bucket: str, threads: int, http: urllib3.PoolManager
    ) -> None:
        self.client = client
        self.http = http
        self.bucket = bucket
        self._presigner = presigner
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="storage-io")
        self._report: OutageReporter | None = None

    def on_outage(self, report: OutageReporter) -> None:
        self._report = report

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(self._pool.shutdown, True))
        self.http.clear()

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            if not tracing.in_trace():
                return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))
            with tracing.span(f"s3 {fn.__name__.strip('_')}", self._attributes(args, kwargs)):
                return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))
        except Exception as exc:
            replacement = classify(exc)
            if replacement is None:
                raise
            if is_outage(replacement) and self._report:
                await self._report(str(replacement))
            raise replacement from exc

    def _attributes(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, str | int]:
        """The bucket, key and body size of one S3 call, for its span."""
        found: dict[str, str | int] = {"s3.bucket": self.bucket}
        strings = [arg for arg in args if isinstance(arg, str) and arg != self.bucket]
        if strings:
            found["s3.key"] = strings[-1] if strings[0] in ("GET", "PUT", "POST", "DELETE") else strings[0]
        body = next(
            (a for a in (*args, kwargs.get("body")) if isinstance(a, bytes | bytearray | memoryview)), None
        )
        if body is not None:
            found["mediagen.bytes"] = len(body)
        return found

    async def ensure_bucket(self) -> None:
        """The health check: the bucket answers (created if missing)."""
        if not await self.call(self.client.bucket_exists, self.bucket):
            await self.call(self.client.make_bucket, self.bucket)

    async def check_conditional_writes(self) -> None:
        """Raise :class:`ConditionalWritesUnsupported` unless a second create of one key is refused."""
        key = f"{CONDITIONAL_CHECK}{uuid.uuid4().hex}"
        try:
            await self.put(key, b"first", {}, if_absent=True)
            try:
                await self.put(key, b"second", {}, if_absent=True)
            except ObjectExists:
                return
            raise ConditionalWritesUnsupported(
                f"the S3 server overwrote {self.bucket}/{key} although the write carried "
                "If-None-Match: *; storage needs conditional writes (a MinIO release that supports "
                "them, or any S3 service honouring If-None-Match) to store each media once"
            )
        finally:
            await self.remove([key])

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

    async def facts(self, key: str) -> tuple[int, dict[str, str]] | None:
        """Size and headers (user metadata included) of ``key``; None if it does not exist."""
        try:
            stat = await self.call(self.client.stat_object, self.bucket, key)
        except ObjectMissing:
            return None
        headers = {str(k).lower(): str(v) for k, v in (stat.metadata or {}).items()}
        return stat.size or 0, headers

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

    async def modified(self, prefix: str) -> dict[str, datetime]:
        """Each key under ``prefix`` with its last-modified time (MinIO's clock)."""

        def listing() -> dict[str, datetime]:
            found = self.client.list_objects(self.bucket, prefix, recursive=True)
            return {o.object_name: o.last_modified for o in found if o.object_name and o.last_modified}

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


__all__ = ["ConditionalWritesUnsupported", "ObjectExists", "ObjectStore"]
