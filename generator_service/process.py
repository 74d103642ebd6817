"""Run one ComfyUI process and keep it running (managed mode).

The generator starts ComfyUI from a command template, waits until it answers, and watches it.
When the process dies, the backend is reported down at once (its in-flight jobs fail with
UNAVAILABLE instead of waiting for their deadline) and the process is restarted with exponential
backoff. Shutdown sends SIGTERM to the whole process group, then SIGKILL if it does not exit.
A generator that is killed outright cannot do that, so ComfyUI is started through
``generator_service.launcher``, which has the kernel end it when the generator dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger("generator.process")

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
                *_launcher(), *self.argv, stdin=asyncio.subprocess.DEVNULL, start_new_session=True
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


def _launcher() -> tuple[str, ...]:
    """The prefix that makes a command die with this process (see ``generator_service.launcher``)."""
    return (sys.executable, "-m", "generator_service.launcher", str(os.getpid()), "--")
