"""How runs and media records are written down, for this service and for any S3 tool.

Each run has ``run.json`` and each media a record ``records/oNNN-iNNN.json``
(the protobuf messages as JSON). The media object itself carries its facts as
``x-amz-meta-*`` user metadata too, so a plain S3 listing makes sense of it;
these must fit S3's 2 KiB user-metadata limit, which bounds what a producer
may attach. The sha256 is only known once the last byte is in, after a
multipart upload has fixed the object's metadata, so it is in the object's
metadata for single-part media and always in the record.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from google.protobuf import duration_pb2, json_format, timestamp_pb2

from mediagen.scaffold.errors import invalid_argument
from mediagen.v1 import common_pb2, storage_pb2
from storage_service.ingest import Received
from storage_service.layout import Slot
from storage_service.probe import Probe

USER_METADATA_LIMIT = 2048
_WORST_CASE = Probe(
    "webm",
    "video/x-matroska",
    common_pb2.MEDIA_TYPE_ANIMATED_IMAGE,
    width=2**32 - 1,
    height=2**32 - 1,
    frame_count=2**32 - 1,
    duration_seconds=10.0**9,
)


def to_json(message: storage_pb2.Run | storage_pb2.MediaRecord) -> bytes:
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=1).encode()


def run_from_json(data: bytes) -> storage_pb2.Run:
    return json_format.Parse(data, storage_pb2.Run(), ignore_unknown_fields=True)


def record_from_json(data: bytes) -> storage_pb2.MediaRecord:
    return json_format.Parse(data, storage_pb2.MediaRecord(), ignore_unknown_fields=True)


def object_headers(
    header: storage_pb2.MediaHeader, probe: Probe, sha256: str = "", size: int = 0
) -> dict[str, str]:
    """Content-Type and x-amz-meta-* for the media object."""
    meta = {
        "run-id": header.run_id,
        "output-index": str(header.output_index),
        "item-index": str(header.item_index),
        "media-type": common_pb2.MediaType.Name(probe.media_type),
        "format": probe.format,
        "width": str(probe.width),
        "height": str(probe.height),
        "frame-count": str(probe.frame_count),
        "duration-seconds": f"{probe.duration_seconds:.3f}",
        "config-name": quote(header.config_name, safe=""),
        "backend": quote(header.backend, safe=""),
        "original-filename": quote(header.original_filename, safe=""),
        "idempotency-key": quote(header.idempotency_key, safe=""),
        "metadata": json.dumps(
            dict(sorted(header.metadata.items())), ensure_ascii=True, separators=(",", ":")
        ),
    }
    if sha256:
        meta.update({"sha256": sha256, "size-bytes": str(size)})
    return {"Content-Type": probe.mime_type, **{f"x-amz-meta-{k}": v for k, v in meta.items() if v}}


def check_metadata_fits(header: storage_pb2.MediaHeader) -> None:
    """INVALID_ARGUMENT naming ``header.metadata`` when the object's metadata could exceed 2 KiB."""
    headers = object_headers(header, _WORST_CASE, "0" * 64, 2**64 - 1)
    used = sum(
        len(k) - len("x-amz-meta-") + len(v) for k, v in headers.items() if k.startswith("x-amz-meta-")
    )
    if used > USER_METADATA_LIMIT:
        raise invalid_argument(
            "header.metadata",
            f"too large: the media's metadata would take {used} bytes, S3 allows {USER_METADATA_LIMIT}",
        )


def media_record(
    slot: Slot, bucket: str, header: storage_pb2.MediaHeader, received: Received
) -> storage_pb2.MediaRecord:
    """The record of media received whole into ``slot``."""
    probe, created = received.probe, timestamp_pb2.Timestamp()
    created.GetCurrentTime()
    descriptor = common_pb2.MediaDescriptor(
        media_type=probe.media_type,
        mime_type=probe.mime_type,
        format=probe.format,
        size_bytes=received.size,
        sha256=received.sha256,
        width=probe.width,
        height=probe.height,
        frame_count=probe.frame_count,
    )
    if probe.duration_seconds:
        descriptor.duration.CopyFrom(duration_from_seconds(probe.duration_seconds))
    return storage_pb2.MediaRecord(
        media_id=slot.media_id,
        run_id=slot.run_id,
        output_index=slot.output,
        item_index=slot.item,
        bucket=bucket,
        key=slot.media_key(probe.format),
        descriptor=descriptor,
        config_name=header.config_name,
        backend=header.backend,
        original_filename=header.original_filename,
        idempotency_key=header.idempotency_key,
        metadata=dict(header.metadata),
        created_at=created,
    )


def duration_from_seconds(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromNanoseconds(round(seconds * 1e9))
    return value
