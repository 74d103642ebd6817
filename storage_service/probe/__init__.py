"""What a media file is, read from its first bytes.

The stored format is detected from content, never trusted from the producer:
each format family has one small reader that recognises its magic bytes and
pulls width, height, frame count or duration out of the header structures it
can see. Nothing is decoded; a reader that runs out of bytes simply leaves the
remaining fields at zero, so callers can pass just the head of a large file.
"""

from __future__ import annotations

from storage_service.probe.audio import AUDIO_READERS
from storage_service.probe.images import IMAGE_READERS
from storage_service.probe.kinds import UNKNOWN, Probe
from storage_service.probe.video import VIDEO_READERS

READERS = (*IMAGE_READERS, *AUDIO_READERS, *VIDEO_READERS)


def sniff(head: bytes) -> Probe:
    """The format of a file whose first bytes are ``head`` (``UNKNOWN`` if none matches)."""
    for reader in READERS:
        found = reader(head)
        if found is not None:
            return found
    return UNKNOWN


__all__ = ["UNKNOWN", "Probe", "sniff"]
