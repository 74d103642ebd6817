"""Audio: FLAC, WAV, MP3 and Ogg (Opus or Vorbis).

FLAC's STREAMINFO and WAV's fmt/data chunks give the duration from the first
few dozen bytes. MP3 and Ogg need the whole file for a duration, so only the
format is reported for them.
"""

from __future__ import annotations

from storage_service.probe.kinds import AUDIO, Probe, Reader, u32be, u32le


def read_flac(head: bytes) -> Probe | None:
    if not head.startswith(b"fLaC"):
        return None
    if len(head) < 26 or head[4] & 0x7F != 0:
        return Probe("flac", "audio/flac", AUDIO)
    rate = (head[18] << 12) | (head[19] << 4) | (head[20] >> 4)
    samples = ((head[21] & 0x0F) << 32) | u32be(head, 22)
    return Probe("flac", "audio/flac", AUDIO, duration_seconds=samples / rate if rate else 0.0)


def read_wav(head: bytes) -> Probe | None:
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    byte_rate, at = 0, 12
    while at + 8 <= len(head):
        kind, size = head[at : at + 4], u32le(head, at + 4)
        if kind == b"fmt " and at + 20 <= len(head):
            byte_rate = u32le(head, at + 16)
        elif kind == b"data":
            duration = size / byte_rate if byte_rate else 0.0
            return Probe("wav", "audio/wav", AUDIO, duration_seconds=duration)
        at += 8 + size + (size & 1)
    return Probe("wav", "audio/wav", AUDIO)


def read_mp3(head: bytes) -> Probe | None:
    if head.startswith(b"ID3") or _mpeg_layer3_sync(head):
        return Probe("mp3", "audio/mpeg", AUDIO)
    return None


def _mpeg_layer3_sync(head: bytes) -> bool:
    return len(head) >= 4 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and (head[1] >> 1) & 3 == 1


def read_ogg(head: bytes) -> Probe | None:
    if not head.startswith(b"OggS") or len(head) < 28:
        return None
    payload = head[27 + head[26] :]
    if payload.startswith(b"OpusHead"):
        return Probe("opus", "audio/ogg", AUDIO)
    return Probe("ogg", "audio/ogg", AUDIO)


AUDIO_READERS: tuple[Reader, ...] = (read_flac, read_wav, read_mp3, read_ogg)
