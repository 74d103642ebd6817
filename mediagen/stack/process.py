"""One part of a local stack running as a child process, with its log file.

Output goes to a file per process rather than a pipe nobody reads (a full pipe
would stall the child). Stopping is SIGTERM, a grace period for the service's
own drain, then SIGKILL, so a stuck process never outlives the stack. The PID
is kept so benchmarks can read each process's peak memory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def terminate_then_kill(
    process: subprocess.Popen[bytes], grace: float = 10.0, kill: Callable[[], None] | None = None
) -> None:
    """SIGTERM, wait up to ``grace`` seconds for the server's own shutdown, then SIGKILL.

    ``kill`` replaces the plain SIGKILL of the process (a whole process group, say).
    """
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        (kill or process.kill)()
        process.wait()


class ProcessExited(RuntimeError):
    """A child died before it was ready; the message holds the end of its log."""


class ManagedProcess:
    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.argv,
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready`` until it holds; fail early if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:  # its last words explain it: a longer tail than for a timeout
                raise ProcessExited(f"{self.name} exited with {self._popen.returncode}:\n{self.log_tail(40)}")
            if ready():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} was not {what} within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; returns the exit code."""
        if self.running:
            self._popen.send_signal(signal.SIGTERM)
            try:
                return self._popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        return self._popen.wait()

    def kill(self) -> None:
        """SIGKILL at once, as a crash would (fault tests)."""
        if self.running:
            os.killpg(self._popen.pid, signal.SIGKILL)
            self._popen.wait()
