"""Large-media throughput of the storage service against one direct MinIO put_object.

Both move the same N MiB into the same MinIO in the same run: first
``put_object`` straight from this process (the baseline), then PutMedia
through ``python -m storage_service`` running as its own process, whose
peak RSS is read from the kernel afterwards. Targets: throughput >= 70 % of
the baseline and peak RSS <= 128 MiB whatever the size.

    python -m bench.bench_storage_throughput [--size-mib 512]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from grpc import aio

from bench.memory import MiB, peak_rss_bytes
from mediagen.ports import free_port
from mediagen.stack import parts
from mediagen.stack.minio import LocalMinio, MinioEndpoint
from mediagen.stack.process import ManagedProcess
from mediagen.stack.readiness import grpc_serving
from mediagen.v1 import storage_pb2, storage_pb2_grpc

BLOCK = os.urandom(8 * MiB)  # repeated: MinIO neither compresses nor deduplicates
CHUNK = MiB
RSS_TARGET_MIB = 128
RATIO_TARGET = 0.70


class RepeatedReader(io.RawIOBase):
    """``size`` bytes of BLOCK over and over, read exactly as asked (for put_object)."""

    def __init__(self, size: int) -> None:
        self._left, self._at = size, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        out = bytearray()
        while len(out) < n:
            take = min(n - len(out), len(BLOCK) - self._at)
            out += BLOCK[self._at : self._at + take]
            self._at = (self._at + take) % len(BLOCK)
        self._left -= n
        return bytes(out)


def repeated_chunks(size: int) -> Iterator[bytes]:
    reader = RepeatedReader(size)
    while chunk := reader.read(CHUNK):
        yield chunk


@dataclass
class StorageProcess:
    process: ManagedProcess
    address: str

    def stop(self) -> None:
        self.process.stop()


def start_storage_process(
    minio: MinioEndpoint, bucket: str, log_dir: Path, overrides: dict[str, str] | None = None
) -> StorageProcess:
    """``python -m storage_service`` configured only through its environment."""
    port = free_port()
    env = {**parts.base_env(), **parts.storage_env(port, minio, bucket, overrides or {})}
    process = ManagedProcess("storage", parts.service_argv("storage_service"), env, log_dir / "storage.log")
    address = f"127.0.0.1:{port}"
    process.wait_until(lambda: grpc_serving(address), 30, "SERVING")
    return StorageProcess(process, address)


async def put_through_service(address: str, size: int) -> float:
    """Seconds to PutMedia ``size`` bytes into a new run."""
    async with aio.insecure_channel(address) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        run = await stub.CreateRun(storage_pb2.CreateRunRequest())
        digest = hashlib.sha256()

        async def requests() -> AsyncIterator[storage_pb2.PutMediaRequest]:
            yield storage_pb2.PutMediaRequest(header=storage_pb2.MediaHeader(run_id=run.run_id))
            for chunk in repeated_chunks(size):
                digest.update(chunk)
                yield storage_pb2.PutMediaRequest(chunk=chunk)
            trailer = storage_pb2.MediaTrailer(size_bytes=size, sha256=digest.hexdigest())
            yield storage_pb2.PutMediaRequest(trailer=trailer)

        started = time.perf_counter()
        record = await stub.PutMedia(requests())
        elapsed = time.perf_counter() - started
        if record.descriptor.size_bytes != size:
            raise RuntimeError(f"stored {record.descriptor.size_bytes} bytes, sent {size}")
        return elapsed


def put_direct(minio: MinioEndpoint, bucket: str, size: int) -> float:
    client = minio.client()
    started = time.perf_counter()
    client.put_object(bucket, f"baseline/{uuid.uuid4().hex}", cast(BinaryIO, RepeatedReader(size)), size)
    return time.perf_counter() - started


@dataclass
class Result:
    size_mib: int
    direct_mib_s: float
    service_mib_s: float
    service_peak_rss_mib: float

    @property
    def ratio(self) -> float:
        return self.service_mib_s / self.direct_mib_s

    def report(self) -> str:
        return (
            f"{self.size_mib} MiB: direct put_object {self.direct_mib_s:.0f} MiB/s, "
            f"storage service {self.service_mib_s:.0f} MiB/s, "
            f"ratio {self.ratio:.2f} (target >= {RATIO_TARGET}), "
            f"service peak RSS {self.service_peak_rss_mib:.1f} MiB (target <= {RSS_TARGET_MIB})"
        )


async def run(size_mib: int, work_dir: Path) -> Result:
    size = size_mib * MiB
    with LocalMinio(work_dir / "minio") as minio:
        bucket = "bench-storage"
        minio.client().make_bucket(bucket)
        direct = await asyncio.to_thread(put_direct, minio, bucket, size)
        service = start_storage_process(minio, bucket, work_dir)
        try:
            through = await put_through_service(service.address, size)
            rss = peak_rss_bytes(service.process.pid) / MiB
        finally:
            service.stop()
    return Result(size_mib, size_mib / direct, size_mib / through, rss)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as work:
        print(asyncio.run(run(args.size_mib, Path(work))).report())


if __name__ == "__main__":
    main()
