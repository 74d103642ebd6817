"""The stream hash computed beside the loop is the sha256 of the bytes in the order given."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from mediagen.hashing import StreamHash


@pytest.mark.parametrize("sizes", [[], [1], [5, 0, 7], [3000] * 50, [1 << 20, 17, 1 << 19, 3]])
def test_the_digest_is_sha256_of_the_chunks_in_order(sizes: list[int]) -> None:
    chunks = [os.urandom(size) for size in sizes]

    async def hashed() -> str:
        stream = StreamHash(batch_bytes=4096)
        for i, chunk in enumerate(chunks):
            await stream.update(memoryview(chunk) if i % 2 else chunk)
        return await stream.hexdigest()

    assert asyncio.run(hashed()) == hashlib.sha256(b"".join(chunks)).hexdigest()
