"""Real media files made on the spot, for probing and round trips."""

from __future__ import annotations

import io
import os
import wave

import av
from PIL import Image


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def noisy_png(size_bytes: int) -> bytes:
    """A valid PNG of about ``size_bytes``: random pixels do not compress."""
    side = int((size_bytes / 3) ** 0.5) + 1
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG", compress_level=0)
    return out.getvalue()


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (0, 90, 200)).save(out, "JPEG")
    return out.getvalue()


def animated(fmt: str, frames: int = 3) -> bytes:
    images = [Image.new("RGB", (32, 24), (i * 60, 10, 10)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def still(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (5, 5, 5)).save(out, fmt)
    return out.getvalue()


def wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\0\0" * int(rate * seconds))
    return out.getvalue()


def audio(container: str, codec: str, seconds: float = 1.0, rate: int = 48000, xing: bool = True) -> bytes:
    """``xing=False``: an MP3 without a Xing/Info frame, so only its bit rate gives the duration."""
    out = io.BytesIO()
    options = {} if xing else {"write_xing": "0"}
    with av.open(out, "w", format=container, options=options) as muxer:
        stream = muxer.add_stream(codec, rate=rate)
        assert isinstance(stream, av.AudioStream)
        frame_samples = 960
        for index in range(int(seconds * rate / frame_samples)):
            frame = av.AudioFrame(format="s16", layout="mono", samples=frame_samples)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate, frame.pts = rate, index * frame_samples
            for packet in stream.encode(frame):
                muxer.mux(packet)
        for packet in stream.encode():
            muxer.mux(packet)
    return out.getvalue()


def video(container: str = "mp4", codec: str = "mpeg4", frames: int = 10, fps: int = 10) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format=container) as muxer:
        stream = muxer.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame(64, 48, "yuv420p")
            frame.pts = index
            for packet in stream.encode(frame):
                muxer.mux(packet)
        for packet in stream.encode():
            muxer.mux(packet)
    return out.getvalue()
