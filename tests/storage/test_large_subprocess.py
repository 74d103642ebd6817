"""A gigabyte through ``python -m storage_service`` as its own process, configured
only by environment: it arrives whole, and the process's memory stays flat.

The tight figures (throughput ratio, 128 MiB) are the benchmark's to judge;
this test prints them and only guards against memory growing with the media.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bench.bench_storage_throughput import BLOCK, put_through_service, start_storage_process
from bench.memory import MiB, peak_rss_bytes
from mediagen.stack.minio import MinioEndpoint

SIZE = 1024 * MiB


@pytest.mark.slow
async def test_one_gibibyte_streams_through_the_service_process(
    minio_endpoint: MinioEndpoint, bucket: str, minio_client, tmp_path: Path
):
    service = start_storage_process(minio_endpoint, bucket, tmp_path)
    try:
        seconds = await put_through_service(service.address, SIZE)
        peak_mib = peak_rss_bytes(service.process.pid) / MiB
    finally:
        service.stop()
    print(f"\n1 GiB via the storage process: {SIZE / MiB / seconds:.0f} MiB/s, peak RSS {peak_mib:.1f} MiB")
    assert peak_mib < 512

    (stored,) = [
        o for o in minio_client.list_objects(bucket, "runs/", recursive=True) if "/media/" in o.object_name
    ]
    assert stored.size == SIZE
    digest = hashlib.sha256()
    response = minio_client.get_object(bucket, stored.object_name)
    try:
        for block in response.stream(8 * MiB):
            digest.update(block)
    finally:
        response.close()
        response.release_conn()
    expected = hashlib.sha256()
    for _ in range(SIZE // len(BLOCK)):
        expected.update(BLOCK)
    assert digest.hexdigest() == expected.hexdigest()
