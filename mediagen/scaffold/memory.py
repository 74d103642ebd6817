"""Keep a service's resident memory flat while gigabytes stream through it.

Media moves through every service in buffers of a few MiB, allocated and freed
on several threads (gRPC's, the event loop's, storage's upload workers).
glibc's defaults raise the mmap threshold after the first such buffer is
freed and give each thread its own arena, so freed buffers stay in the heaps
and resident memory creeps up with every stream. A fixed threshold stops the
creep (buffers above it are their own mappings, returned to the system when
freed), and two arenas bound the rest.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger("mediagen.memory")

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
DEFAULT_MMAP_THRESHOLD = 4 * 1024 * 1024


def tune_allocator(mmap_threshold: int, arenas: int = 2) -> bool:
    """Apply the glibc settings; False (and nothing changed) elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        applied = libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold) and libc.mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):
        return False
    if not applied:
        log.warning("could not tune the allocator; memory may grow with large media")
    return bool(applied)
