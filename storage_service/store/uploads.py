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

These are bare calls: which uploads are open and who aborts them is
:mod:`storage_service.store.ledger` and :mod:`storage_service.store.cleanup`.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import timedelta

from minio.datatypes import Part
from minio.error import S3Error
from minio.helpers import md5sum_hash
from minio.xml import Element, SubElement, getbytes

from storage_service.store.errors import ObjectMissing
from storage_service.store.objects import ObjectStore

PART_URL_TTL = timedelta(hours=1)
Buffer = bytes | bytearray | memoryview
PartBody = Buffer | list[memoryview]
"""A part as one buffer or as the views that make it up, sent one after another."""


class S3Uploads:
    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._client = store.client
        self._bucket = store.bucket

    async def create(self, key: str, headers: Mapping[str, str]) -> str:
        """CreateMultipartUpload; the new upload's id."""
        return await self._store.call(self._client._create_multipart_upload, self._bucket, key, dict(headers))

    async def upload_part(self, key: str, upload_id: str, number: int, data: PartBody) -> Part:
        return Part(number, await self._store.call(self._send_part, key, upload_id, number, data))

    async def complete(self, key: str, upload_id: str, parts: list[Part]) -> None:
        element = Element("CompleteMultipartUpload")
        for part in parts:
            tag = SubElement(element, "Part")
            SubElement(tag, "PartNumber", str(part.part_number))
            SubElement(tag, "ETag", f'"{part.etag}"')
        body = getbytes(element)
        headers = {"Content-Type": "application/xml", "Content-MD5": str(md5sum_hash(body))}
        query = {"uploadId": upload_id}
        await self._store.call(
            self._client._execute, "POST", self._bucket, key, body=body, headers=headers, query_params=query
        )

    async def abort(self, key: str, upload_id: str) -> None:
        """AbortMultipartUpload; an upload already gone is fine."""
        with contextlib.suppress(ObjectMissing):
            await self._store.call(self._client._abort_multipart_upload, self._bucket, key, upload_id)

    async def of_key(self, key: str) -> list[str]:
        """Ids of the unfinished uploads of exactly ``key``.

        Asked with the exact key as prefix: MinIO lists an upload that
        survived a restart only when asked for its exact key, not in a
        listing of the whole bucket.
        """

        def listing() -> list[str]:
            found: list[str] = []
            key_marker = upload_marker = None
            while True:
                page = self._client._list_multipart_uploads(
                    self._bucket, prefix=key, key_marker=key_marker, upload_id_marker=upload_marker
                )
                found += [u.upload_id for u in page.uploads if u.object_name == key and u.upload_id]
                if not page.is_truncated:
                    return found
                key_marker, upload_marker = page.next_key_marker, page.next_upload_id_marker

        return await self._store.call(listing)

    def _send_part(self, key: str, upload_id: str, number: int, data: PartBody) -> str:
        query: dict[str, str | list[str] | tuple[str]] = {"partNumber": str(number), "uploadId": upload_id}
        url = self._client.get_presigned_url(
            "PUT", self._bucket, key, expires=PART_URL_TTL, extra_query_params=query
        )
        size = sum(piece.nbytes for piece in data) if isinstance(data, list) else memoryview(data).nbytes
        response = self._store.http.urlopen("PUT", url, body=data, headers={"Content-Length": str(size)})
        if response.status != 200:
            try:
                raise S3Error.fromxml(response)
            except ET.ParseError:
                raise OSError(f"UploadPart answered HTTP {response.status}") from None
        return str(response.headers["ETag"]).strip('"')
