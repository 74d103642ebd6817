"""The S3 multipart calls, with parts sent as unsigned payloads.

minio-py signs every request body with its sha256 when talking plain HTTP,
which for media means hashing each byte a second time (the service already
hashes the stream to check the trailer) and MinIO verifying that hash once
more. Parts therefore go to a presigned UploadPart URL instead: the request
itself is signed (SigV4 in the query), the payload is ``UNSIGNED-PAYLOAD``
and its integrity rests on TCP and on the stream's own sha256, checked before
anything is completed. Over TLS minio-py sends unsigned payloads anyway.
The other calls use minio-py's underscore methods: it has no public API for
multipart uploads.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import urllib3
from minio import Minio
from minio.datatypes import Part, Upload
from minio.error import S3Error
from minio.helpers import md5sum_hash
from minio.xml import Element, SubElement, getbytes

from storage_service.store.background import finish_anyway
from storage_service.store.errors import ObjectMissing

T = TypeVar("T")
PART_URL_TTL = timedelta(hours=1)
Buffer = bytes | bytearray | memoryview


class UploadMarks(Protocol):
    """Where this process writes down the uploads it has open (see ``store.instances``)."""

    async def mark(self, key: str, upload_id: str) -> None: ...

    async def unmark(self, upload_id: str) -> None: ...


class MultipartCalls:
    client: Minio
    bucket: str
    http: urllib3.PoolManager
    live_uploads: set[str]
    marks: UploadMarks | None
    _unaborted: set[tuple[str, str]]

    if TYPE_CHECKING:

        async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    async def start_upload(self, key: str, headers: Mapping[str, str]) -> str:
        upload_id = await self.call(self.client._create_multipart_upload, self.bucket, key, dict(headers))
        self.live_uploads.add(upload_id)
        if self.marks is not None:
            try:
                await self.marks.mark(key, upload_id)
            except BaseException:
                await finish_anyway(self.abort_upload(key, upload_id), f"aborting the upload of {key}")
                raise
        return upload_id

    async def upload_part(self, key: str, upload_id: str, number: int, data: Buffer) -> Part:
        return Part(number, await self.call(self._send_part, key, upload_id, number, data))

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
        await self._forget(upload_id)

    async def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort; while MinIO is unreachable the abort is owed and retried once it is back."""
        self._unaborted.add((key, upload_id))
        with contextlib.suppress(ObjectMissing):
            await self.call(self.client._abort_multipart_upload, self.bucket, key, upload_id)
        self._unaborted.discard((key, upload_id))
        await self._forget(upload_id)

    async def _forget(self, upload_id: str) -> None:
        self.live_uploads.discard(upload_id)
        if self.marks is not None:
            await finish_anyway(self.marks.unmark(upload_id), f"dropping the marker of upload {upload_id}")

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

    def _send_part(self, key: str, upload_id: str, number: int, data: Buffer) -> str:
        query: dict[str, str | list[str] | tuple[str]] = {"partNumber": str(number), "uploadId": upload_id}
        url = self.client.get_presigned_url(
            "PUT", self.bucket, key, expires=PART_URL_TTL, extra_query_params=query
        )
        response = self.http.urlopen("PUT", url, body=data, headers={"Content-Length": str(len(data))})
        if response.status != 200:
            try:
                raise S3Error.fromxml(response)
            except ET.ParseError:
                raise OSError(f"UploadPart answered HTTP {response.status}") from None
        return str(response.headers["ETag"]).strip('"')
