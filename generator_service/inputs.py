"""What kind of file an input is, told from its first bytes.

An input that is empty or not the kind its loader reads (a text file given as an image) would be
uploaded, queued and only fail while the graph runs; recognising the format from the magic bytes
refuses it before anything is created. Only the first :data:`HEADER_BYTES` are looked at, so a
caller (the gateway) may send just those to have an input judged.
"""

from __future__ import annotations

from mediagen.rules import INPUT_HEADER_BYTES as HEADER_BYTES

_IMAGE_BRANDS = (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1")
_AUDIO_BRANDS = (b"M4A ", b"M4B ")


def media_kinds(data: bytes) -> frozenset[str]:
    """The kinds (``image``, ``audio``, ``video``) the bytes can be; empty when none."""
    head = data[:HEADER_BYTES]
    if head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")):
        return frozenset({"image"})
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return frozenset({"image"})
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return frozenset({"image"})
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return frozenset({"audio"})
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return frozenset({"video"})
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return frozenset({"image"})
        if brand in _AUDIO_BRANDS:
            return frozenset({"audio"})
        return frozenset({"video", "audio"})
    if head.startswith((b"fLaC", b"ID3")) or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return frozenset({"audio"})
    if head.startswith(b"OggS"):
        return frozenset({"audio", "video"})
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return frozenset({"video", "audio"})
    return frozenset()


def kind_problem(data: bytes, kind: str) -> str:
    """Why ``data`` cannot be read as ``kind``, or "" when it can."""
    if not data:
        return "is empty"
    if kind not in media_kinds(data):
        return f"is not {'an' if kind[0] in 'aeiou' else 'a'} {kind} file this service recognises"
    return ""
