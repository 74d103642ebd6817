"""Run one ComfyUI process and keep it running (managed mode).

The generator starts ComfyUI from a command template, waits until it answers, and watches it.
When the process dies, the backend is reported down at once (its in-flight jobs fail with
UNAVAILABLE instead of waiting for their deadline) and the process is restarted with exponential
backoff. Shutdown sends SIGTERM to the whole process group, then SIGKILL if it does not exit.
A generator that is killed outright cannot do that, so on Linux the child asks the kernel to
send it SIGTERM when its parent dies: a managed ComfyUI never outlives its generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger("generator.process")

PR_SET_PDEATHSIG = 1
Probe = Callable[[], Awaitable[object]]
Notify = Callable[[bool, str], None]


class ManagedProcess:
    def __init__(
        self,
        command: str,
        host: str,
        port: int,
        data_dir: Path,
        start_timeout: float,
        backoff: tuple[float, float],
    ) -> None:
        self.argv = [
            part.format(host=host, port=port, data_dir=str(data_dir)) for part in shlex.split(command)
        ]
        self.url = f"http://{host}:{port}"
        self.data_dir = data_dir
        self.restarts = 0
        self._start_timeout = start_timeout
        self._backoff = backoff
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    def start(self, probe: Probe, notify: Notify) -> None:
        """Supervise in the background; ``notify(up, why)`` reports every change."""
        self._task = asyncio.create_task(self._supervise(probe, notify), name=f"comfyui {self.url}")

    async def _supervise(self, probe: Probe, notify: Notify) -> None:
        delay = self._backoff[0]
        while True:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            log.info("started ComfyUI pid %s: %s", self._proc.pid, " ".join(self.argv))
            if await self._wait_ready(probe):
                notify(True, "")
                delay = self._backoff[0]
                code = await self._proc.wait()
                why = f"ComfyUI process exited with code {code}"
            else:
                why = f"ComfyUI did not answer within {self._start_timeout:.0f}s"
                await self._terminate()
            log.warning("%s; restarting in %.1fs", why, delay)
            notify(False, why)
            await asyncio.sleep(delay)
            self.restarts += 1
            delay = min(delay * 2, self._backoff[1])

    async def _wait_ready(self, probe: Probe) -> bool:
        assert self._proc is not None
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._start_timeout
        while loop.time() < give_up and self._proc.returncode is None:
            try:
                await probe()
                return True
            except Exception:  # noqa: BLE001 - not up yet, whatever the error
                await asyncio.sleep(0.1)
        return False

    async def stop(self, grace: float = 5.0) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._terminate(grace)

    async def _terminate(self, grace: float = 5.0) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                await asyncio.wait_for(proc.wait(), grace)
                return
            except TimeoutError:
                log.warning("ComfyUI pid %s ignored %s", proc.pid, sig.name)


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM when the generator goes away, however it goes."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
