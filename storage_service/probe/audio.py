"""Audio: FLAC, WAV, MP3 and Ogg (Opus; Vorbis read the same way, untested: no encoder here).

FLAC's STREAMINFO and WAV's fmt/data chunks give the duration from the first
few dozen bytes. MP3 gives it from its first frame: the frame count of a
Xing/Info or VBRI header, or else (constant bit rate) the bit rate and the
media's size. Ogg gives it from the granule position of its last page, read
from the tail of the stream, with the rate (and Opus's pre-skip) from the
first page.
"""

from __future__ import annotations

from storage_service.probe.kinds import AUDIO, Probe, Reader, Sample, u16le, u32be, u32le, u64le


def read_flac(sample: Sample) -> Probe | None:
    head = sample.head
    if not head.startswith(b"fLaC"):
        return None
    if len(head) < 26 or head[4] & 0x7F != 0:
        return Probe("flac", "audio/flac", AUDIO)
    rate = (head[18] << 12) | (head[19] << 4) | (head[20] >> 4)
    samples = ((head[21] & 0x0F) << 32) | u32be(head, 22)
    return Probe("flac", "audio/flac", AUDIO, duration_seconds=samples / rate if rate else 0.0)


def read_wav(sample: Sample) -> Probe | None:
    head = sample.head
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


_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_MP3_KBPS = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}


def read_mp3(sample: Sample) -> Probe | None:
    head = sample.head
    start = _id3_end(head)
    if not head.startswith(b"ID3") and not _layer3_sync(head, 0):
        return None
    return Probe("mp3", "audio/mpeg", AUDIO, duration_seconds=_mp3_duration(sample, start))


def _id3_end(head: bytes) -> int:
    """Where the first MPEG frame starts: after an ID3v2 tag, if any."""
    if not head.startswith(b"ID3") or len(head) < 10:
        return 0
    size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
    return 10 + size + (10 if head[5] & 0x10 else 0)


def _layer3_sync(head: bytes, at: int) -> bool:
    return (
        at + 4 <= len(head)
        and head[at] == 0xFF
        and head[at + 1] & 0xE0 == 0xE0
        and (head[at + 1] >> 1) & 3 == 1
        and (head[at + 1] >> 3) & 3 != 1
    )


def _mp3_duration(sample: Sample, at: int) -> float:
    """Seconds, from the first frame's Xing/Info/VBRI frame count or, failing that, its bit rate."""
    head = sample.head
    if not _layer3_sync(head, at):
        return 0.0
    version, rate_index, bitrate_index = (head[at + 1] >> 3) & 3, (head[at + 2] >> 2) & 3, head[at + 2] >> 4
    if rate_index == 3 or bitrate_index in (0, 15):
        return 0.0
    rate = _MP3_RATES[version][rate_index]
    per_frame = 1152 if version == 3 else 576
    mono = head[at + 3] >> 6 == 3
    side_info = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    xing = at + 4 + side_info
    if head[xing : xing + 4] in (b"Xing", b"Info") and xing + 12 <= len(head) and u32be(head, xing + 4) & 1:
        return u32be(head, xing + 8) * per_frame / rate
    vbri = at + 36
    if head[vbri : vbri + 4] == b"VBRI" and vbri + 18 <= len(head):
        return u32be(head, vbri + 14) * per_frame / rate
    kbps = _MP3_KBPS[3 if version == 3 else 2][bitrate_index]
    return (sample.size - at) * 8 / (kbps * 1000) if sample.size else 0.0


def read_ogg(sample: Sample) -> Probe | None:
    head = sample.head
    if not head.startswith(b"OggS") or len(head) < 28:
        return None
    payload = head[27 + head[26] :]
    if payload.startswith(b"OpusHead") and len(payload) >= 12:
        rate, skip = 48000, u16le(payload, 10)  # Opus granules always count 48 kHz samples
        return Probe("opus", "audio/ogg", AUDIO, duration_seconds=_ogg_duration(sample, rate, skip))
    if payload.startswith(b"\x01vorbis") and len(payload) >= 16:
        rate = u32le(payload, 12)
        return Probe("ogg", "audio/ogg", AUDIO, duration_seconds=_ogg_duration(sample, rate, 0))
    return Probe("ogg", "audio/ogg", AUDIO)


def _ogg_duration(sample: Sample, rate: int, pre_skip: int) -> float:
    """Seconds from the granule position of the last page in the stream's tail."""
    tail = sample.tail
    last = tail.rfind(b"OggS")
    if not rate or last < 0 or last + 14 > len(tail) or tail[last + 4] != 0:
        return 0.0
    granule = u64le(tail, last + 6)
    if granule == 2**64 - 1:
        return 0.0
    return max(granule - pre_skip, 0) / rate


AUDIO_READERS: tuple[Reader, ...] = (read_flac, read_wav, read_mp3, read_ogg)
