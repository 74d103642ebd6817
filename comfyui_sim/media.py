"""Deterministic, real media: every file the simulator writes opens in Pillow or PyAV.

A client under test must download, sniff and store actual PNG/WEBP/MP4/WEBM/FLAC/MP3/Opus
bytes, so fakes with the right extension are not enough. Pictures are a seeded gradient
plus seeded noise, so the same graph and seed always give the same pixels.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import struct
from fractions import Fraction
from typing import Any

import av
from PIL import Image, ImageChops, ImageOps
from PIL.PngImagePlugin import PngInfo


def seed_of(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def file_digest(path: str) -> str:
    """Content hash of a file (LoadImage's IS_CHANGED), ``"missing"`` when absent."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return "missing"
    return digest.hexdigest()


def solid(width: int, height: int, color: int) -> Image.Image:
    rgb = ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)
    return Image.new("RGB", (width, height), rgb)


def pattern(width: int, height: int, seed: int) -> Image.Image:
    """A seeded gradient with seeded noise on top, exactly ``width`` x ``height``."""
    rng = random.Random(seed)
    ramp = Image.linear_gradient("L").resize((width, height))
    channels = [
        ramp.rotate(rng.choice((0, 90, 180, 270))).resize((width, height)),
        ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        Image.radial_gradient("L").resize((width, height)),
    ]
    base = Image.merge("RGB", [ImageOps.autocontrast(c) for c in channels])
    tint = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
    base = Image.blend(base, tint, 0.35)
    noise = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    return Image.blend(base, noise, 0.2)


def invert(image: Image.Image) -> Image.Image:
    return ImageChops.invert(image.convert("RGB"))


def png_bytes(image: Image.Image, compress_level: int = 1) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def save_png(image: Image.Image, path: str, prompt: Any, compress_level: int) -> None:
    info = PngInfo()
    if prompt is not None:
        import json

        info.add_text("prompt", json.dumps(prompt))
    image.save(path, pnginfo=info, compress_level=compress_level)


def save_animated(frames: list[Image.Image], path: str, fmt: str, fps: float, **options: Any) -> None:
    duration = max(1, round(1000.0 / fps))
    first, rest = frames[0], frames[1:]
    first.save(path, format=fmt, save_all=True, append_images=rest, duration=duration, **options)


def silence(seconds: float, rate: int, channels: int) -> bytes:
    return bytes(round(seconds * rate) * channels * 2)


def tone(seconds: float, rate: int, channels: int, seed: int) -> bytes:
    """A seeded sine (s16 interleaved)."""
    freq = 110.0 + (seed % 880)
    count = round(seconds * rate)
    out = bytearray()
    for n in range(count):
        sample = int(12000 * math.sin(2 * math.pi * freq * n / rate))
        out += struct.pack("<h", sample) * channels
    return bytes(out)


AUDIO_CODECS = {"flac": ("flac", "flac"), "mp3": ("mp3", "libmp3lame"), "opus": ("ogg", "libopus")}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def write_audio(path: str, pcm: bytes, rate: int, channels: int, fmt: str, bitrate: str | None) -> None:
    """Encode s16 interleaved PCM with PyAV (flac, mp3 or opus in ogg)."""
    container_fmt, codec = AUDIO_CODECS[fmt]
    out_rate = rate
    if fmt == "opus" and rate not in OPUS_RATES:
        out_rate = next((r for r in OPUS_RATES if r > rate), 48000)
    layout = "stereo" if channels == 2 else "mono"
    with av.open(path, "w", format=container_fmt) as container:
        stream: Any = container.add_stream(codec, rate=out_rate)
        stream.layout = layout
        if bitrate and bitrate[:-1].isdigit():
            stream.bit_rate = int(bitrate[:-1]) * 1000
        resampler = av.AudioResampler(format=stream.format.name, layout=layout, rate=out_rate)
        chunk = 4096 * channels * 2
        for start in range(0, max(len(pcm), 1), chunk):
            piece = pcm[start : start + chunk] or bytes(channels * 2 * 64)
            frame = av.AudioFrame(format="s16", layout=layout, samples=len(piece) // (channels * 2))
            frame.planes[0].update(piece)
            frame.sample_rate = rate
            for converted in resampler.resample(frame):
                for packet in stream.encode(converted):
                    container.mux(packet)
        for converted in resampler.resample(None):
            for packet in stream.encode(converted):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def write_video(path: str, frames: list[Image.Image], fps: float, codec: str, crf: float | None) -> None:
    """Encode frames to mp4/h264 or webm/vp9 (odd sizes are padded to even, as yuv420p needs)."""
    width, height = frames[0].size
    even = (width + width % 2, height + height % 2)
    fmt = "webm" if codec in ("vp9", "libvpx-vp9") else "mp4"
    name = "libvpx-vp9" if fmt == "webm" else "libx264"
    rate = Fraction(fps).limit_denominator(1000)
    video_frame: Any = av.VideoFrame
    with av.open(path, "w", format=fmt) as container:
        stream: Any = container.add_stream(name, rate=rate)
        stream.width, stream.height = even
        stream.pix_fmt = "yuv420p"
        if crf is not None:
            stream.options = {"crf": str(int(crf))}
        for image in frames:
            if image.size != even:
                canvas = Image.new("RGB", even)
                canvas.paste(image.convert("RGB"))
                image = canvas
            frame = video_frame.from_image(image.convert("RGB"))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
