"""A PNG of arbitrary size written row by row, with memory that does not grow with the file.

Throughput tests need multi-gigabyte outputs. Pillow would hold the whole image in memory, so
this writer emits the PNG by hand: IHDR, then IDAT chunks holding zlib "stored" (level 0)
blocks of random rows, then IEND. Only one chunk (about 1 MiB) is in memory at a time.
"""

from __future__ import annotations

import math
import random
import struct
import zlib
from typing import BinaryIO

CHUNK_BYTES = 1 << 20


def _chunk(out: BinaryIO, kind: bytes, data: bytes) -> None:
    out.write(struct.pack(">I", len(data)))
    out.write(kind)
    out.write(data)
    out.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF))


def dimensions_for(size_bytes: int) -> tuple[int, int]:
    """A width/height whose RGB pixel data is at least ``size_bytes`` (width capped at 4096)."""
    pixels = max(1, math.ceil(size_bytes / 3))
    width = min(4096, max(1, math.isqrt(pixels)))
    return width, max(1, math.ceil(pixels / width))


def write_random_png(out: BinaryIO, width: int, height: int, seed: int) -> None:
    """Write an RGB8 PNG of incompressible pixels, streaming one IDAT chunk at a time."""
    rng = random.Random(seed)
    out.write(b"\x89PNG\r\n\x1a\n")
    _chunk(out, b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    row_len = 1 + width * 3
    stream = _StoredZlib(out)
    for _ in range(height):
        stream.feed(b"\x00" + rng.randbytes(row_len - 1))
    stream.finish()
    _chunk(out, b"IEND", b"")


class _StoredZlib:
    """Builds a zlib stream of stored blocks and flushes it as IDAT chunks."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.pending = bytearray(b"\x78\x01")
        self.adler = 1
        self.block = bytearray()

    def feed(self, data: bytes) -> None:
        self.adler = zlib.adler32(data, self.adler)
        self.block += data
        while len(self.block) >= 65535:
            self._emit(bytes(self.block[:65535]), final=False)
            del self.block[:65535]

    def _emit(self, data: bytes, final: bool) -> None:
        length = len(data)
        self.pending += bytes([1 if final else 0]) + struct.pack("<HH", length, length ^ 0xFFFF)
        self.pending += data
        if len(self.pending) >= CHUNK_BYTES:
            _chunk(self.out, b"IDAT", bytes(self.pending))
            self.pending.clear()

    def finish(self) -> None:
        self._emit(bytes(self.block), final=True)
        self.block.clear()
        self.pending += struct.pack(">I", self.adler & 0xFFFFFFFF)
        _chunk(self.out, b"IDAT", bytes(self.pending))
        self.pending.clear()
