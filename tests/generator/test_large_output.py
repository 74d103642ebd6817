"""A 512 MiB output streams through the generator with flat memory.

Sim, generator and client share this process, so the figure is a sanity check (the benchmarks
measure each service alone): the client hashes chunks as they come and keeps none, so any
growth in RSS would be the generator buffering.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import psutil

from tests.generator.support import template_request

MiB = 1024 * 1024


async def test_512_mib_output_streams_with_flat_rss(generator_stub, simulator):
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = baseline
    digest, received, end = hashlib.sha256(), 0, None

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    started = time.monotonic()
    first_byte = None
    try:
        async for event in generator_stub.Generate(
            template_request("large_image", size_bytes=512 * MiB), timeout=110
        ):
            if event.HasField("media_chunk"):
                first_byte = first_byte or time.monotonic()
                digest.update(event.media_chunk.data)
                received += len(event.media_chunk.data)
            elif event.HasField("media_end"):
                end = event.media_end
    finally:
        sampler.cancel()
    elapsed = time.monotonic() - (first_byte or started)
    growth = (peak - baseline) / MiB
    print(
        f"\n512 MiB output: {received / MiB:.0f} MiB streamed in {elapsed:.2f}s "
        f"({received / MiB / elapsed:.0f} MiB/s), RSS baseline {baseline / MiB:.0f} MiB, "
        f"peak growth {growth:.1f} MiB"
    )
    assert received >= 500 * MiB
    assert end is not None
    assert end.size_bytes == received
    assert end.sha256 == digest.hexdigest()
    assert growth < 64
