"""Video containers: MP4/QuickTime (ISO boxes) and WebM/Matroska (EBML).

Both are walked element by element over the bytes given. When the index
(``moov`` in MP4, ``Tracks`` in WebM) lies within them, width, height and
duration come out; when it sits at the end of a large file, they stay zero.
"""

from __future__ import annotations

import struct

from storage_service.probe.kinds import AUDIO, VIDEO, Probe, Reader, u32be, u64be

_MP4_CONTAINERS = {b"moov", b"trak"}


def read_mp4(head: bytes) -> Probe | None:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    brand = head[8:12]
    if brand == b"M4A ":
        base = Probe("m4a", "audio/mp4", AUDIO)
    elif brand == b"qt  ":
        base = Probe("mov", "video/quicktime", VIDEO)
    else:
        base = Probe("mp4", "video/mp4", VIDEO)
    facts: dict[str, float] = {}
    _walk_boxes(head, 0, len(head), facts)
    return Probe(
        base.format,
        base.mime_type,
        base.media_type,
        int(facts.get("width", 0)),
        int(facts.get("height", 0)),
        0,
        facts.get("duration", 0.0),
    )


def _walk_boxes(data: bytes, at: int, end: int, facts: dict[str, float]) -> None:
    while at + 8 <= end:
        size, kind, body = u32be(data, at), data[at + 4 : at + 8], at + 8
        if size == 1 and at + 16 <= end:
            size, body = u64be(data, at + 8), at + 16
        elif size == 0:
            size = end - at
        if size < 8:
            return
        if kind in _MP4_CONTAINERS:
            _walk_boxes(data, body, min(at + size, end), facts)
        elif kind == b"mvhd":
            _read_mvhd(data, body, facts)
        elif kind == b"tkhd" and "width" not in facts:
            _read_tkhd(data, body, facts)
        at += size


def _read_mvhd(data: bytes, body: int, facts: dict[str, float]) -> None:
    version = data[body] if body < len(data) else 0
    if version == 1 and body + 32 <= len(data):
        scale, duration = u32be(data, body + 20), u64be(data, body + 24)
    elif body + 20 <= len(data):
        scale, duration = u32be(data, body + 12), u32be(data, body + 16)
    else:
        return
    if scale:
        facts["duration"] = duration / scale


def _read_tkhd(data: bytes, body: int, facts: dict[str, float]) -> None:
    version = data[body] if body < len(data) else 0
    at = body + (88 if version == 1 else 76)
    if at + 8 <= len(data):
        width, height = u32be(data, at) >> 16, u32be(data, at + 4) >> 16
        if width and height:
            facts["width"], facts["height"] = width, height


_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_MASTERS = {0x18538067, 0x1654AE6B, 0xAE, 0xE0, 0x1549A966}
_EBML_LEAVES = {0xB0: "width", 0xBA: "height", 0x2AD7B1: "scale", 0x4489: "duration"}
_CLUSTER = 0x1F43B675


def read_webm(head: bytes) -> Probe | None:
    if not head.startswith(_EBML_MAGIC):
        return None
    webm = b"webm" in head[:64]
    facts: dict[str, float] = {}
    _walk_ebml(head, 0, len(head), facts)
    scale = facts.get("scale", 1_000_000)
    return Probe(
        "webm" if webm else "mkv",
        "video/webm" if webm else "video/x-matroska",
        VIDEO,
        int(facts.get("width", 0)),
        int(facts.get("height", 0)),
        0,
        facts.get("duration", 0.0) * scale / 1e9,
    )


def _walk_ebml(data: bytes, at: int, end: int, facts: dict[str, float]) -> None:
    while at < end:
        element = _vint(data, at, keep_marker=True)
        if element is None:
            return
        ident, at = element
        length = _vint(data, at, keep_marker=False)
        if length is None or ident == _CLUSTER:
            return
        size, at = length
        stop = min(at + size, end)
        if ident in _EBML_MASTERS:
            _walk_ebml(data, at, stop, facts)
        elif ident in _EBML_LEAVES and stop - at == size:
            facts.setdefault(_EBML_LEAVES[ident], _ebml_number(data[at:stop], ident == 0x4489))
        at += size


def _vint(data: bytes, at: int, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer at ``at`` and the offset after it."""
    if at >= len(data) or data[at] == 0:
        return None
    width = 9 - data[at].bit_length()
    if at + width > len(data):
        return None
    value = int.from_bytes(data[at : at + width], "big")
    if not keep_marker:
        value &= (1 << (7 * width)) - 1
        if value == (1 << (7 * width)) - 1:
            value = len(data)  # unknown size: runs to the end of what we have
    return value, at + width


def _ebml_number(raw: bytes, is_float: bool) -> float:
    if is_float:
        return float(struct.unpack(">f" if len(raw) == 4 else ">d", raw)[0]) if len(raw) in (4, 8) else 0.0
    return float(int.from_bytes(raw, "big"))


VIDEO_READERS: tuple[Reader, ...] = (read_mp4, read_webm)
