"""``python -m generator_service.launcher PARENT_PID -- COMMAND...``: run COMMAND so it dies with PARENT.

A generator killed outright runs no shutdown code, so a managed ComfyUI would outlive it and
keep holding its GPU. This launcher asks the kernel (Linux ``PR_SET_PDEATHSIG``) for SIGTERM
when its parent goes away, then becomes COMMAND with ``exec``; the request survives the exec.
It is a separate program because doing the same between fork and exec inside the generator
would run Python in a child forked from a process with gRPC threads, which is not safe.
A program that cannot be run is reported as a shell would (exit code 127, or 126), in one line.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request was in place (PID given up front)
        sys.exit(1)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--" or not argv[1].isdigit():
        print("usage: python -m generator_service.launcher PARENT_PID -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    die_with_parent(int(argv[1]))
    try:
        os.execvp(argv[3], argv[3:])
    except OSError as exc:  # what a shell would say, with a shell's exit codes
        print(f"cannot run {argv[3]!r}: {exc.strerror}", file=sys.stderr, flush=True)
        return 127 if isinstance(exc, FileNotFoundError) else 126


if __name__ == "__main__":
    sys.exit(main(sys.argv))
