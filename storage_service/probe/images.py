"""Still and animated images: PNG (and APNG), JPEG, GIF, WEBP.

Dimensions sit in fixed header places for all four. Frame counts are cheap for
APNG (the acTL chunk says it) and are counted for GIF and animated WEBP from
the frames visible in the bytes given.

One rule decides between IMAGE and ANIMATED_IMAGE for every format: more than
one frame is an animation, one frame is an image (frame count 1), whatever
the container calls it. A one-frame APNG (an acTL chunk saying 1) and a
one-frame animated WEBP (the VP8X animation flag, one ANMF chunk), as
animation-saving nodes write when given one image, are both IMAGE.
"""

from __future__ import annotations

from mediagen.v1 import common_pb2
from storage_service.probe.kinds import (
    ANIMATED,
    IMAGE,
    Probe,
    Reader,
    Sample,
    u16be,
    u16le,
    u24le,
    u32be,
    u32le,
)


def read_png(sample: Sample) -> Probe | None:
    head = sample.head
    if not head.startswith(b"\x89PNG\r\n\x1a\n") or len(head) < 24:
        return None
    width, height = u32be(head, 16), u32be(head, 20)
    frames = _apng_frames(head) or 1
    return Probe("png", "image/png", kind_of(frames), width=width, height=height, frame_count=frames)


def _apng_frames(head: bytes) -> int:
    """num_frames of the acTL chunk, which comes before the first IDAT."""
    at = 8
    while at + 8 <= len(head):
        length, kind = u32be(head, at), head[at + 4 : at + 8]
        if kind == b"acTL" and at + 12 <= len(head):
            return u32be(head, at + 8)
        if kind == b"IDAT":
            return 0
        at += 12 + length
    return 0


def kind_of(frames: int) -> common_pb2.MediaType.ValueType:
    """The one rule for every format: more than one frame is an animation."""
    return ANIMATED if frames > 1 else IMAGE


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def read_jpeg(sample: Sample) -> Probe | None:
    head = sample.head
    if not head.startswith(b"\xff\xd8\xff"):
        return None
    at = 2
    while at + 9 <= len(head) and head[at] == 0xFF:
        marker = head[at + 1]
        if marker in _SOF_MARKERS:
            return Probe(
                "jpg",
                "image/jpeg",
                IMAGE,
                width=u16be(head, at + 7),
                height=u16be(head, at + 5),
                frame_count=1,
            )
        at += 2 + u16be(head, at + 2)
    return Probe("jpg", "image/jpeg", IMAGE)


def read_gif(sample: Sample) -> Probe | None:
    head = sample.head
    if head[:6] not in (b"GIF87a", b"GIF89a") or len(head) < 10:
        return None
    frames = _gif_frames(head)
    return Probe(
        "gif", "image/gif", kind_of(frames), width=u16le(head, 6), height=u16le(head, 8), frame_count=frames
    )


def _gif_frames(head: bytes) -> int:
    """Image descriptors seen while walking the block structure."""
    flags = head[10] if len(head) > 10 else 0
    at = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    while at < len(head):
        introducer = head[at]
        if introducer == 0x3B:
            break
        if introducer == 0x2C:
            frames += 1
            local = head[at + 9] if at + 9 < len(head) else 0
            at += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0) + 1
        elif introducer == 0x21:
            at += 2
        else:
            break
        at = _skip_sub_blocks(head, at)
    return frames


def _skip_sub_blocks(head: bytes, at: int) -> int:
    while at < len(head) and head[at] != 0:
        at += head[at] + 1
    return at + 1


def read_webp(sample: Sample) -> Probe | None:
    head = sample.head
    if len(head) < 30 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    kind = head[12:16]
    if kind == b"VP8 ":
        return Probe(
            "webp",
            "image/webp",
            IMAGE,
            width=u16le(head, 26) & 0x3FFF,
            height=u16le(head, 28) & 0x3FFF,
            frame_count=1,
        )
    if kind == b"VP8L":
        bits = u32le(head, 21)
        return Probe(
            "webp",
            "image/webp",
            IMAGE,
            width=(bits & 0x3FFF) + 1,
            height=((bits >> 14) & 0x3FFF) + 1,
            frame_count=1,
        )
    if kind == b"VP8X":
        width, height = u24le(head, 24) + 1, u24le(head, 27) + 1
        frames = _webp_frames(head) if head[20] & 0x02 else 1
        return Probe("webp", "image/webp", kind_of(frames), width=width, height=height, frame_count=frames)
    return Probe("webp", "image/webp", IMAGE)


def _webp_frames(head: bytes) -> int:
    """ANMF chunks seen while walking the RIFF chunks."""
    at, frames = 12, 0
    while at + 8 <= len(head):
        size = u32le(head, at + 4)
        frames += head[at : at + 4] == b"ANMF"
        at += 8 + size + (size & 1)
    return frames


IMAGE_READERS: tuple[Reader, ...] = (read_png, read_jpeg, read_gif, read_webp)
