"""What kind of media an output file is: its media type, MIME type and format, from its name.

Every backend kind names its outputs (ComfyUI in its history, a provider by the URL or the
format it was asked for) and every one reports them by the same rule: a known extension decides;
otherwise the type the backend served, if any; otherwise a guess from the name. The format is
the extension, with ``jpg`` spelled ``jpeg``.
"""

from __future__ import annotations

import mimetypes
from typing import NamedTuple

from mediagen.v1 import common_pb2

_VIDEO = {
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "avi": "video/x-msvideo",
}
_AUDIO = {
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
}
_IMAGE = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "gif": "image/gif",
}

_KINDS = {
    "image": common_pb2.MEDIA_TYPE_IMAGE,
    "audio": common_pb2.MEDIA_TYPE_AUDIO,
    "video": common_pb2.MEDIA_TYPE_VIDEO,
}


class MediaKind(NamedTuple):
    media_type: common_pb2.MediaType.ValueType
    mime: str
    format: str


def media_kind(filename: str, animated: bool = False, served: str = "") -> MediaKind:
    """The kind of ``filename``; ``animated`` is ComfyUI's flag, ``served`` a Content-Type seen.

    A GIF, or an image flagged animated, is an animated image.
    """
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext in _VIDEO:
        return MediaKind(common_pb2.MEDIA_TYPE_VIDEO, _VIDEO[ext], ext)
    if ext in _AUDIO:
        return MediaKind(common_pb2.MEDIA_TYPE_AUDIO, _AUDIO[ext], ext)
    if ext in _IMAGE:
        moving = animated or ext == "gif"
        kind = common_pb2.MEDIA_TYPE_ANIMATED_IMAGE if moving else common_pb2.MEDIA_TYPE_IMAGE
        return MediaKind(kind, _IMAGE[ext], format_name(ext))
    mime = served.split(";", 1)[0].strip() or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return MediaKind(_KINDS.get(mime.split("/", 1)[0], common_pb2.MEDIA_TYPE_OTHER), mime, format_name(ext))


def format_name(extension: str) -> str:
    """The format an extension stands for (``jpg`` is ``jpeg``)."""
    return "jpeg" if extension == "jpg" else extension
