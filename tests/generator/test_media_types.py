"""One rule tells an output's media type, MIME type and format, for ComfyUI and provider outputs.

ComfyUI's history names a file (with an ``animated`` flag), a provider serves a URL with a
Content-Type, or its output format is asked for: all go through ``media_kind``, so the same
file is reported alike whichever backend made it.
"""

from __future__ import annotations

import pytest

from generator_service.media_types import MediaKind, media_kind
from mediagen.v1 import common_pb2

IMAGE = common_pb2.MEDIA_TYPE_IMAGE
ANIMATED = common_pb2.MEDIA_TYPE_ANIMATED_IMAGE
VIDEO = common_pb2.MEDIA_TYPE_VIDEO
AUDIO = common_pb2.MEDIA_TYPE_AUDIO
OTHER = common_pb2.MEDIA_TYPE_OTHER

CASES = [
    ("out_00001_.png", False, "", MediaKind(IMAGE, "image/png", "png")),
    ("photo.JPG", False, "", MediaKind(IMAGE, "image/jpeg", "jpeg")),
    ("anim.gif", False, "", MediaKind(ANIMATED, "image/gif", "gif")),
    ("anim.webp", True, "", MediaKind(ANIMATED, "image/webp", "webp")),
    ("clip.mp4", False, "", MediaKind(VIDEO, "video/mp4", "mp4")),
    ("clip.mp4", True, "", MediaKind(VIDEO, "video/mp4", "mp4")),
    ("sound.flac", False, "", MediaKind(AUDIO, "audio/flac", "flac")),
    # a known extension decides, whatever type a store served it as
    ("out.png", False, "application/octet-stream", MediaKind(IMAGE, "image/png", "png")),
    # otherwise the served type, parameters dropped
    ("out.xyz", False, "video/mp4; codecs=avc1", MediaKind(VIDEO, "video/mp4", "xyz")),
    ("out.latent", False, "", MediaKind(OTHER, "application/octet-stream", "latent")),
    ("no_extension", False, "", MediaKind(OTHER, "application/octet-stream", "")),
]


@pytest.mark.parametrize(("filename", "animated", "served", "expected"), CASES)
def test_an_output_is_described_by_one_rule(
    filename: str, animated: bool, served: str, expected: MediaKind
) -> None:
    assert media_kind(filename, animated, served) == expected
