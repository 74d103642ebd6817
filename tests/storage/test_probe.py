"""Format detection from header bytes, on real files made by Pillow, PyAV and wave."""

from __future__ import annotations

import pytest

from mediagen.v1 import common_pb2
from storage_service.probe import UNKNOWN, sniff, sniff_whole
from tests.storage import media_files

IMAGE, ANIMATED = common_pb2.MEDIA_TYPE_IMAGE, common_pb2.MEDIA_TYPE_ANIMATED_IMAGE
AUDIO, VIDEO = common_pb2.MEDIA_TYPE_AUDIO, common_pb2.MEDIA_TYPE_VIDEO


@pytest.mark.parametrize(
    ("make", "fmt", "mime", "kind", "size"),
    [
        (media_files.png, "png", "image/png", IMAGE, (64, 48)),
        (media_files.jpeg, "jpg", "image/jpeg", IMAGE, (80, 60)),
        (lambda: media_files.still("GIF"), "gif", "image/gif", IMAGE, (40, 30)),
        (lambda: media_files.still("WEBP"), "webp", "image/webp", IMAGE, (40, 30)),
        (lambda: media_files.animated("PNG"), "png", "image/png", ANIMATED, (32, 24)),
        (lambda: media_files.animated("GIF"), "gif", "image/gif", ANIMATED, (32, 24)),
        (lambda: media_files.animated("WEBP"), "webp", "image/webp", ANIMATED, (32, 24)),
    ],
    ids=["png", "jpeg", "gif", "webp", "apng", "animated-gif", "animated-webp"],
)
def test_images_report_format_and_dimensions(make, fmt, mime, kind, size):
    probe = sniff_whole(make())
    assert (probe.format, probe.mime_type, probe.media_type) == (fmt, mime, kind)
    assert (probe.width, probe.height) == size
    assert probe.frame_count == (3 if kind == ANIMATED else 1)


def test_lossless_webp_dimensions():
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (77, 33)).save(out, "WEBP", lossless=True)
    probe = sniff(out.getvalue())
    assert (probe.width, probe.height) == (77, 33)


@pytest.mark.parametrize("frames", [1, 2])
@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
def test_one_rule_for_animations_a_single_frame_is_an_image(fmt, frames):
    """An animation-saving node given one image writes a one-frame APNG / animated WEBP: an IMAGE."""
    probe = sniff_whole(media_files.animated(fmt, frames=frames))
    assert probe.media_type == (ANIMATED if frames > 1 else IMAGE)
    assert probe.frame_count == frames


AUDIO_FILES = [
    (lambda: media_files.wav(2.0), "wav", "audio/wav"),
    (lambda: media_files.audio("flac", "flac", 2.0), "flac", "audio/flac"),
    (lambda: media_files.audio("mp3", "libmp3lame", 2.0), "mp3", "audio/mpeg"),
    (lambda: media_files.audio("mp3", "libmp3lame", 2.0, xing=False), "mp3", "audio/mpeg"),
    (lambda: media_files.audio("ogg", "libopus", 2.0), "opus", "audio/ogg"),
]
AUDIO_IDS = ["wav", "flac", "mp3", "mp3-without-xing", "opus"]


@pytest.mark.parametrize(("make", "fmt", "mime"), AUDIO_FILES, ids=AUDIO_IDS)
def test_audio_reports_format_and_duration(make, fmt, mime):
    probe = sniff_whole(make())
    assert (probe.format, probe.mime_type, probe.media_type) == (fmt, mime, AUDIO)
    assert probe.duration_seconds == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize(("make", "fmt", "mime"), AUDIO_FILES, ids=AUDIO_IDS)
def test_audio_duration_comes_from_bounded_ends_of_the_stream(make, fmt, mime):
    """Only a few KiB of each end and the size: what a multipart upload keeps."""
    data = make()
    probe = sniff(data[:4096], data[-4096:], len(data))
    assert probe.duration_seconds == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize(
    ("container", "codec", "fmt", "mime"),
    [("mp4", "mpeg4", "mp4", "video/mp4"), ("webm", "libvpx", "webm", "video/webm")],
)
def test_video_reports_dimensions_duration_and_frames(container, codec, fmt, mime):
    data = media_files.video(container, codec, frames=20, fps=10)
    for probe in (sniff_whole(data), sniff(data[:4096], data[-8192:], len(data))):
        assert (probe.format, probe.mime_type, probe.media_type) == (fmt, mime, VIDEO)
        assert (probe.width, probe.height) == (64, 48)
        assert probe.duration_seconds == pytest.approx(2.0, abs=0.15)
        assert probe.frame_count == 20


def test_head_of_a_file_is_enough_for_the_format():
    """Only the first part of a large file is probed: the format must come out of it."""
    data = media_files.video(frames=30)
    probe = sniff(data[:64])
    assert probe.format == "mp4"
    assert sniff(media_files.noisy_png(300_000)[:1024]).format == "png"


@pytest.mark.parametrize("data", [b"", b"hello world", b"\x89PNG", b"RIFF\0\0\0\0WAVX", b"\xff\xd8"])
def test_unrecognised_or_truncated_bytes_are_unknown_not_errors(data):
    assert sniff(data) in (UNKNOWN,) or sniff(data).format in {"png", "wav", "jpg"}
    assert sniff(b"just text") == UNKNOWN
