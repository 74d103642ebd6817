"""What a media file is, read from its first and last bytes.

The stored format is detected from content, never trusted from the producer:
each format family has one small reader that recognises its magic bytes and
pulls width, height, frame count or duration out of the header structures it
can see. Nothing is decoded, and readers see bounded bytes only: the head of
the media (its first part), its tail (the last bytes received) and its size
(see :mod:`storage_service.ingest`). A reader that runs out of bytes simply
leaves the remaining fields at zero.
"""

from __future__ import annotations

from storage_service.probe.audio import AUDIO_READERS
from storage_service.probe.images import IMAGE_READERS
from storage_service.probe.kinds import UNKNOWN, Probe, Sample
from storage_service.probe.video import VIDEO_READERS

READERS = (*IMAGE_READERS, *AUDIO_READERS, *VIDEO_READERS)


def sniff(head: bytes, tail: bytes = b"", size: int = 0) -> Probe:
    """The format of a file that starts with ``head`` and ends with ``tail`` (``UNKNOWN`` if none matches)."""
    sample = Sample(head, tail, size)
    for reader in READERS:
        found = reader(sample)
        if found is not None:
            return found
    return UNKNOWN


def sniff_whole(data: bytes) -> Probe:
    """The format of media held whole."""
    return sniff(data, data, len(data))


__all__ = ["UNKNOWN", "Probe", "sniff", "sniff_whole"]
