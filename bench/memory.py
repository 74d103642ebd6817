"""Peak resident memory of processes, as the kernel counts it.

``VmHWM`` is the high-water mark of a process's resident set since it
started, so one read at the end catches a peak that sampling would miss.
"""

from __future__ import annotations

from pathlib import Path

MiB = 1024 * 1024


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def peak_rss_mib(pids: dict[str, int]) -> dict[str, float]:
    return {name: round(peak_rss_bytes(pid) / MiB, 1) for name, pid in pids.items()}
