"""The result every format reader returns, and the byte helpers they share."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

from mediagen.v1 import common_pb2


@dataclass(frozen=True)
class Probe:
    """Format facts read from header bytes; zero means "not known cheaply".

    The measurements are named at every construction (width and height are easily swapped)."""

    format: str
    mime_type: str
    media_type: common_pb2.MediaType.ValueType
    _: KW_ONLY
    width: int = 0
    height: int = 0
    frame_count: int = 0
    duration_seconds: float = 0.0

    @property
    def known(self) -> bool:
        return self.format != UNKNOWN.format


UNKNOWN = Probe("bin", "application/octet-stream", common_pb2.MEDIA_TYPE_OTHER)


@dataclass(frozen=True)
class Sample:
    """What a reader may look at: the first bytes of the media, its last bytes, and its size.

    Both ends are bounded (see :mod:`storage_service.ingest`); for media held
    whole, head and tail are the whole media. ``size`` 0 means not known yet.
    """

    head: bytes
    tail: bytes = b""
    size: int = 0

    @property
    def complete(self) -> bool:
        """Whether ``head`` is the whole media."""
        return self.size == len(self.head) > 0


Reader = Callable[[Sample], Probe | None]

IMAGE = common_pb2.MEDIA_TYPE_IMAGE
ANIMATED = common_pb2.MEDIA_TYPE_ANIMATED_IMAGE
AUDIO = common_pb2.MEDIA_TYPE_AUDIO
VIDEO = common_pb2.MEDIA_TYPE_VIDEO


def u16be(data: bytes, at: int) -> int:
    return int(struct.unpack_from(">H", data, at)[0])


def u32be(data: bytes, at: int) -> int:
    return int(struct.unpack_from(">I", data, at)[0])


def u64be(data: bytes, at: int) -> int:
    return int(struct.unpack_from(">Q", data, at)[0])


def u64le(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<Q", data, at)[0])


def u16le(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<H", data, at)[0])


def u24le(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 3], "little")


def u32le(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<I", data, at)[0])
