"""Real media files go in through PutMedia and come back identical, described
by what their bytes say, readable by a plain S3 client."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from google.protobuf import duration_pb2

from mediagen.v1 import common_pb2, storage_pb2
from tests.storage import media_files
from tests.storage.client import fetch, new_run, put
from tests.storage.conftest import StorageServer
from tests.support.minio_source import read_object

MEDIA = [
    ("png", media_files.png, "image/png", common_pb2.MEDIA_TYPE_IMAGE, 64, 48),
    (
        "webp",
        lambda: media_files.animated("WEBP"),
        "image/webp",
        common_pb2.MEDIA_TYPE_ANIMATED_IMAGE,
        32,
        24,
    ),
    ("flac", lambda: media_files.audio("flac", "flac"), "audio/flac", common_pb2.MEDIA_TYPE_AUDIO, 0, 0),
    ("wav", media_files.wav, "audio/wav", common_pb2.MEDIA_TYPE_AUDIO, 0, 0),
    ("mp4", media_files.video, "video/mp4", common_pb2.MEDIA_TYPE_VIDEO, 64, 48),
]


@pytest.mark.parametrize(("fmt", "make", "mime", "kind", "width", "height"), MEDIA, ids=[m[0] for m in MEDIA])
async def test_media_round_trip_keeps_bytes_and_describes_them(
    storage_server: StorageServer, fmt, make, mime, kind, width, height
):
    data = make()
    run_id = await new_run(storage_server.stub)
    record = await put(
        storage_server.stub,
        run_id,
        data,
        output=3,
        item=1,
        config_name="txt2img",
        backend="comfy-a",
        original_filename=f"ComfyUI_0001.{fmt}",
        metadata={"seed": "42", "prompt": "a cat, ünïcode"},
        media_type=common_pb2.MEDIA_TYPE_OTHER,
    )

    assert record.media_id == f"{run_id}.3.1"
    assert record.key == f"runs/{run_id}/media/o003-i001.{fmt}"
    assert record.bucket == storage_server.bucket
    d = record.descriptor
    assert (d.format, d.mime_type, d.media_type) == (fmt, mime, kind)
    assert (d.width, d.height) == (width, height)
    assert d.size_bytes == len(data)
    assert d.sha256 == hashlib.sha256(data).hexdigest()
    if fmt == "webp":
        assert d.frame_count == 3
    if fmt in ("flac", "wav", "mp4"):
        assert abs(d.duration.ToNanoseconds() / 1e9 - 1.0) < 0.05
    assert record.metadata["prompt"] == "a cat, ünïcode"

    got_record, body = await fetch(storage_server.stub, record.media_id)
    assert body == data
    assert got_record == record

    plain = storage_server.minio
    assert read_object(plain, storage_server.bucket, record.key) == data
    stat = plain.stat_object(storage_server.bucket, record.key)
    meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
    assert stat.content_type == mime
    assert meta["x-amz-meta-run-id"] == run_id
    assert meta["x-amz-meta-output-index"] == "3"
    assert meta["x-amz-meta-format"] == fmt
    assert meta["x-amz-meta-sha256"] == d.sha256
    assert meta["x-amz-meta-size-bytes"] == str(len(data))
    assert meta["x-amz-meta-config-name"] == "txt2img"
    assert meta["x-amz-meta-original-filename"] == f"ComfyUI_0001.{fmt}"
    assert '"seed":"42"' in meta["x-amz-meta-metadata"]


async def test_multipart_media_round_trip_records_sha_and_head_facts(storage_server: StorageServer):
    """Media larger than one part goes through a multipart upload and comes back identical."""
    data = media_files.noisy_png(12 * 1024 * 1024)
    run_id = await new_run(storage_server.stub)
    record = await put(storage_server.stub, run_id, data)
    assert record.descriptor.format == "png"
    assert record.descriptor.width > 1000
    assert record.descriptor.sha256 == hashlib.sha256(data).hexdigest()
    _, body = await fetch(storage_server.stub, record.media_id)
    assert body == data
    stat = storage_server.minio.stat_object(storage_server.bucket, record.key)
    assert stat.size == len(data)
    assert stat.content_type == "image/png"


async def test_unknown_bytes_use_the_format_hint_or_octet_stream(storage_server: StorageServer):
    run_id = await new_run(storage_server.stub)
    plain = await put(storage_server.stub, run_id, b"just some text", output=0)
    hinted = await put(
        storage_server.stub,
        run_id,
        b'{"a": 1}',
        output=1,
        format_hint="json",
        media_type=common_pb2.MEDIA_TYPE_OTHER,
    )
    assert (plain.descriptor.format, plain.descriptor.mime_type) == ("bin", "application/octet-stream")
    assert plain.key.endswith("o000-i000.bin")
    assert (hinted.descriptor.format, hinted.descriptor.mime_type) == ("json", "application/json")


async def test_presigned_url_downloads_the_same_bytes(storage_server: StorageServer):
    data = media_files.jpeg()
    run_id = await new_run(storage_server.stub)
    record = await put(storage_server.stub, run_id, data)
    ttl = duration_pb2.Duration(seconds=120)
    presigned = await storage_server.stub.PresignMedia(
        storage_pb2.PresignMediaRequest(media_id=record.media_id, ttl=ttl)
    )
    async with httpx.AsyncClient() as http:
        response = await http.get(presigned.url)
    assert response.status_code == 200
    assert response.content == data
    assert "X-Amz-Expires=120" in presigned.url
    default = await storage_server.stub.PresignMedia(
        storage_pb2.PresignMediaRequest(media_id=record.media_id)
    )
    assert f"X-Amz-Expires={int(storage_server.settings.presign_default_ttl.total_seconds())}" in default.url


async def test_run_lists_its_media_in_output_order(storage_server: StorageServer):
    run_id = await new_run(storage_server.stub)
    for output, item in [(2, 0), (0, 1), (10, 0), (0, 0), (1, 3)]:
        await put(
            storage_server.stub, run_id, media_files.png(8 + output, 8 + item), output=output, item=item
        )
    listed = await storage_server.stub.ListRunMedia(storage_pb2.ListRunMediaRequest(run_id=run_id))
    order = [(m.output_index, m.item_index) for m in listed.media]
    assert order == [(0, 0), (0, 1), (1, 3), (2, 0), (10, 0)]
    got = await storage_server.stub.GetRun(storage_pb2.GetRunRequest(run_id=run_id))
    assert got.run.run_id == run_id
    assert [m.media_id for m in got.media] == [m.media_id for m in listed.media]
