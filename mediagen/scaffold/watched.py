"""Files watched for change: certificates and token lists rotated in place.

A mounted secret is swapped (cert-manager, the kubelet) without telling the
process; comparing each file's modification time and inode, at most once a
second, is how a service notices and re-reads it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

# Files are looked at no more often than this: one stat per file per interval at most.
CHECK_INTERVAL = 1.0


class WatchedFiles:
    """A set of files and the modification times they had when last read."""

    def __init__(self, *files: Path | None) -> None:
        self._files = [f for f in files if f is not None]
        self._seen = self._stamps()
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def _stamps(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for path in self._files:
            try:
                info = os.stat(path)
                stamps.append((info.st_mtime_ns, info.st_ino))
            except OSError:
                stamps.append((-1, -1))
        return tuple(stamps)

    def changed(self) -> bool:
        """True once after any file was replaced or rewritten (looked at every CHECK_INTERVAL)."""
        with self._lock:
            now = time.monotonic()
            if now - self._checked < CHECK_INTERVAL:
                return False
            self._checked = now
            stamps = self._stamps()
            if stamps == self._seen or (-1, -1) in stamps:
                # Unchanged, or caught between the removal and the rename of a rotation.
                return False
            self._seen = stamps
            return True
