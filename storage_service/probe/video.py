"""Video containers: MP4/QuickTime (ISO boxes) and WebM/Matroska (EBML).

Both are walked element by element, skipping media data by its size, never
decoding it. MP4's index (``moov``) gives width, height, duration and the
video track's sample count (its frame count); it is read from the head of
the stream or, where it was written last, from the tail. WebM's ``Info`` and
``Tracks`` give duration, width, height and the video track's frame duration,
so the frame count is the duration divided by it; without a frame duration,
the video track's blocks are counted when the whole file is at hand.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from storage_service.probe.kinds import AUDIO, VIDEO, Probe, Reader, Sample, u32be, u64be

_MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
Track = dict[str, bytes | int]  # one trak's handler type and sample count


def read_mp4(sample: Sample) -> Probe | None:
    head = sample.head
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
    _walk_boxes(head, 0, len(head), facts, {})
    if "duration" not in facts:
        _moov_in_tail(sample.tail, facts)
    return Probe(
        base.format,
        base.mime_type,
        base.media_type,
        width=int(facts.get("width", 0)),
        height=int(facts.get("height", 0)),
        frame_count=int(facts.get("frames", 0)),
        duration_seconds=facts.get("duration", 0.0),
    )


def _moov_in_tail(tail: bytes, facts: dict[str, float]) -> None:
    """A ``moov`` written after the media data, when it lies whole within the tail."""
    at = tail.rfind(b"moov") - 4
    if at >= 0 and at + u32be(tail, at) <= len(tail):
        _walk_boxes(tail, at, len(tail), facts, {})


def _walk_boxes(
    data: bytes, at: int, end: int, facts: dict[str, float], track: dict[str, bytes | int]
) -> None:
    while at + 8 <= end:
        size, kind, body = u32be(data, at), data[at + 4 : at + 8], at + 8
        if size == 1 and at + 16 <= end:
            size, body = u64be(data, at + 8), at + 16
        elif size == 0:
            size = end - at
        if size < 8:
            return
        stop = min(at + size, end)
        if kind == b"trak":
            this_track: Track = {}
            _walk_boxes(data, body, stop, facts, this_track)
            samples = this_track.get("samples", 0)
            if this_track.get("handler") == b"vide" and "frames" not in facts and isinstance(samples, int):
                facts["frames"] = float(samples)
        elif kind in _MP4_CONTAINERS:
            _walk_boxes(data, body, stop, facts, track)
        elif kind == b"mvhd":
            _read_mvhd(data, body, facts)
        elif kind == b"tkhd" and "width" not in facts:
            _read_tkhd(data, body, facts)
        elif kind == b"hdlr" and body + 12 <= len(data):
            track["handler"] = data[body + 8 : body + 12]
        elif kind == b"stsz" and body + 12 <= len(data):
            track["samples"] = u32be(data, body + 8)
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
_SEGMENT, _INFO, _TRACKS, _TRACK_ENTRY, _VIDEO = 0x18538067, 0x1549A966, 0x1654AE6B, 0xAE, 0xE0
_CLUSTER, _BLOCK_GROUP, _SIMPLE_BLOCK, _BLOCK = 0x1F43B675, 0xA0, 0xA3, 0xA1
_EBML_LEAVES = {
    0xB0: "width",
    0xBA: "height",
    0x2AD7B1: "scale",
    0x4489: "duration",
    0x83: "type",
    0xD7: "number",
    0x23E383: "frame_ns",
}
_FLOATS = {0x4489}
_VIDEO_TRACK = 1


def read_webm(sample: Sample) -> Probe | None:
    head = sample.head
    if not head.startswith(_EBML_MAGIC):
        return None
    webm = b"webm" in head[:64]
    facts: dict[str, float] = {}
    _walk_ebml(head, 0, len(head), facts)
    duration = facts.get("duration", 0.0) * facts.get("scale", 1_000_000) / 1e9
    frames = 0
    if facts.get("frame_ns"):
        frames = round(duration * 1e9 / facts["frame_ns"])
    elif sample.complete and "number" in facts:
        frames = _count_blocks(head, 0, len(head), int(facts["number"]))
    return Probe(
        "webm" if webm else "mkv",
        "video/webm" if webm else "video/x-matroska",
        VIDEO,
        width=int(facts.get("width", 0)),
        height=int(facts.get("height", 0)),
        frame_count=frames,
        duration_seconds=duration,
    )


def _walk_ebml(data: bytes, at: int, end: int, facts: dict[str, float]) -> None:
    """Info and Tracks; the first video track's facts go into ``facts``."""
    for ident, start, stop, size in _elements(data, at, end):
        if ident == _CLUSTER:
            return
        if ident == _TRACK_ENTRY:
            track: dict[str, float] = {}
            _walk_ebml(data, start, stop, track)
            if track.get("type") == _VIDEO_TRACK:
                for name in ("width", "height", "frame_ns", "number"):
                    if name in track:
                        facts.setdefault(name, track[name])
        elif ident in (_SEGMENT, _INFO, _TRACKS, _VIDEO):
            _walk_ebml(data, start, stop, facts)
        elif ident in _EBML_LEAVES and stop - start == size:
            facts.setdefault(_EBML_LEAVES[ident], _ebml_number(data[start:stop], ident in _FLOATS))


def _count_blocks(data: bytes, at: int, end: int, track: int) -> int:
    """Blocks of ``track`` in the clusters within ``data`` (the whole file)."""
    count = 0
    for ident, start, stop, _ in _elements(data, at, end):
        if ident in (_SEGMENT, _CLUSTER, _BLOCK_GROUP):
            count += _count_blocks(data, start, stop, track)
        elif ident in (_SIMPLE_BLOCK, _BLOCK):
            number = _vint(data, start, keep_marker=False)
            count += number is not None and number[0] == track
    return count


def _elements(data: bytes, at: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(id, body start, body stop, declared size) of each element from ``at`` to ``end``."""
    while at < end:
        element = _vint(data, at, keep_marker=True)
        if element is None:
            return
        ident, at = element
        length = _vint(data, at, keep_marker=False)
        if length is None:
            return
        size, at = length
        yield ident, at, min(at + size, end), size
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
