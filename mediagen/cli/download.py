"""Media fetched through the gateway's GetMedia stream, written chunk by chunk.

The file is written under a temporary name and renamed only once the last
chunk arrived and its SHA-256 matches the record, so a broken download never
leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mediagen.v1 import gateway_pb2_grpc, storage_pb2


class DownloadError(RuntimeError):
    """The bytes received do not match the stored record."""


async def download_media(
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub, media_id: str, path: Path
) -> storage_pb2.MediaRecord:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    record: storage_pb2.MediaRecord | None = None
    digest, size = hashlib.sha256(), 0
    try:
        with partial.open("wb") as out:
            async for part in stub.GetMedia(storage_pb2.GetMediaRequest(media_id=media_id)):
                if part.WhichOneof("part") == "record":
                    record = part.record
                else:
                    out.write(part.chunk)
                    digest.update(part.chunk)
                    size += len(part.chunk)
        if record is None or digest.hexdigest() != record.descriptor.sha256:
            raise DownloadError(f"media {media_id}: received {size} bytes that do not match the record")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return record


def media_filename(record: storage_pb2.MediaRecord) -> str:
    extension = record.descriptor.format or "bin"
    name = record.config_name or "output"
    return f"{record.output_index:02d}-{name}-{record.item_index}.{extension}"
