"""Run one ComfyUI process and keep it running (managed mode).

The command is split like a shell would split it (``shlex``) but run without a shell: ``&&``,
pipes, redirections and ``cd`` mean nothing, so the working directory is a setting of its own.
``{host}``, ``{port}``, ``{data_dir}`` and ``{instance}`` are replaced wherever they appear;
nothing else is. The process's output (stdout and stderr) is relayed line by line to the
generator's log (``generator.comfyui``), and its last lines are kept to explain a failed start.

The first start is part of the generator's start-up: a process that exits, or does not answer
within the start timeout, fails it at once with its exit code and last lines (a wrong command is
a configuration error, not something to retry for ever). Once it has answered, a death is
reported at once (the backend's jobs fail with UNAVAILABLE instead of waiting for their deadline)
and the process is restarted with exponential backoff. Stopping sends SIGTERM to the whole
process group, then SIGKILL after ``stop_wait`` seconds, whatever ComfyUI is doing.

A generator that is killed outright cannot stop anything, so ComfyUI is started through
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
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

from generator_service import launcher
from generator_service.job_files import JobFiles
from mediagen.tasks import cancel_and_wait

log = logging.getLogger("mediagen.generator.process")
output_log = logging.getLogger("mediagen.generator.comfyui")

Probe = Callable[[], Awaitable[object]]
Notify = Callable[[bool, str], None]
TAIL_LINES = 20
MAX_LINE = 2000
SHELL_WORDS = frozenset({"&&", "||", "|", ";", "&", ">", ">>", "<", "2>", "2>&1"})


class ComfyUIStartFailed(RuntimeError):
    """The managed ComfyUI's first start failed; the message has its exit code and last lines."""


def command_argv(command: str, host: str, port: int, data_dir: Path, instance: int = 0) -> list[str]:
    """The argument vector run for ``command`` (``ValueError`` if it cannot be split)."""
    values = {"{host}": host, "{port}": str(port), "{data_dir}": str(data_dir), "{instance}": str(instance)}
    argv = []
    for part in shlex.split(command):
        for placeholder, value in values.items():
            part = part.replace(placeholder, value)
        argv.append(part)
    if not argv:
        raise ValueError("the command is empty")
    return argv


def check_command(command: str) -> None:
    """Refuse what only a shell would understand, with the reason (a settings check)."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"cannot split the command: {exc}") from None
    if not words:
        raise ValueError("the command is empty")
    shell = sorted(SHELL_WORDS.intersection(words))
    if shell:
        raise ValueError(
            f"the command is run without a shell, so {' '.join(shell)} would reach the program as "
            "arguments: set the working directory in MEDIAGEN_GENERATOR_COMFYUI_WORKDIR instead of "
            "'cd ... &&', or run a script"
        )


class ManagedProcess:
    def __init__(
        self,
        name: str,
        command: str,
        *,
        host: str,
        port: int,
        data_dir: Path,
        files: JobFiles,
        start_timeout: float,
        backoff: tuple[float, float],
        workdir: Path | None = None,
        stop_wait: float = 3.0,
        instance: int = 0,
    ) -> None:
        self.name = name
        self.argv = command_argv(command, host, port, data_dir, instance)
        self.url = f"http://{host}:{port}"
        self.data_dir = data_dir
        self.files = files
        self.workdir = workdir
        self.restarts = 0
        self._start_timeout = start_timeout
        self._backoff = backoff
        self._stop_wait = stop_wait
        self._proc: asyncio.subprocess.Process | None = None
        self._relay: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._first_start: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    def start(self, probe: Probe, notify: Notify) -> None:
        """Supervise in the background; ``notify(up, why)`` reports every change."""
        self._first_start = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._supervise(probe, notify), name=f"comfyui {self.url}")

    async def started(self) -> None:
        """Wait for the first start: returns once ComfyUI answers, or raises ComfyUIStartFailed."""
        assert self._first_start is not None, "start() first"
        await asyncio.shield(self._first_start)

    async def _supervise(self, probe: Probe, notify: Notify) -> None:
        assert self._first_start is not None
        try:
            await self._keep_running(probe, notify, self._first_start)
        finally:  # stopped before its first start was over
            self._first_start.cancel()

    async def _keep_running(self, probe: Probe, notify: Notify, first_start: asyncio.Future[None]) -> None:
        delay = self._backoff[0]
        while True:
            why = await self._run_once(probe, notify, first_start)
            await self._drain_relay()
            if not first_start.done():
                first_start.set_exception(ComfyUIStartFailed(self._failure(why)))
                return
            log.warning("%s: %s; restarting in %.1fs", self.name, why, delay)
            notify(False, why)
            await asyncio.sleep(delay)
            self.restarts += 1
            delay = min(delay * 2, self._backoff[1])

    async def _run_once(self, probe: Probe, notify: Notify, first_start: asyncio.Future[None]) -> str:
        """Start the process and, once it answers, wait for its end; returns why it is over."""
        try:
            proc = await self._spawn()
        except OSError as exc:  # the launcher itself cannot run (a missing working directory ...)
            return f"cannot start: {exc}"
        if await self._wait_ready(probe, proc):
            if not first_start.done():
                first_start.set_result(None)
            notify(True, "")
            return f"ComfyUI process exited with {_describe(await proc.wait())}"
        if proc.returncode is not None:
            return f"ComfyUI process exited with {_describe(proc.returncode)} before answering"
        await self._terminate()
        return f"ComfyUI did not answer within {self._start_timeout:g}s"

    async def _spawn(self) -> asyncio.subprocess.Process:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.files.sweep)
        self._tail.clear()
        self._proc = await asyncio.create_subprocess_exec(
            *_launcher(),
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        where = f" in {self.workdir}" if self.workdir else ""
        log.info("%s: started pid %s%s: %s", self.name, self._proc.pid, where, shlex.join(self.argv))
        assert self._proc.stdout is not None
        self._relay = asyncio.create_task(self._relay_output(self._proc.stdout), name=f"{self.name} output")
        return self._proc

    def _failure(self, why: str) -> str:
        where = f" (in {self.workdir})" if self.workdir else ""
        lines = "\n".join(f"  | {line}" for line in self._tail) or "  (it printed nothing)"
        return (
            f"{self.name}: {why}; command{where}: {shlex.join(self.argv)}\nlast lines of its output:\n{lines}"
        )

    async def _relay_output(self, stream: asyncio.StreamReader) -> None:
        """Each line to the log and the tail; ``\\r`` rewrites a line (progress bars), as on a terminal."""
        pending = b""
        while chunk := await stream.read(64 * 1024):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self._emit(raw)
            if len(pending) > MAX_LINE * 4:  # a line without end (a progress bar): keep its latest state
                pending = pending.rsplit(b"\r", 1)[-1][-MAX_LINE:]
        if pending:
            self._emit(pending)

    def _emit(self, raw: bytes) -> None:
        line = raw.rstrip(b"\r").rsplit(b"\r", 1)[-1].decode(errors="replace").rstrip()[:MAX_LINE]
        if line:
            self._tail.append(line)
            output_log.info("%s", line, extra={"fields": {"backend": self.name}})

    async def _drain_relay(self) -> None:
        """The output to its end (the pipe closes with the process; its children may hold it a while)."""
        if self._relay is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._relay, 1.0)
            self._relay = None

    async def _wait_ready(self, probe: Probe, proc: asyncio.subprocess.Process) -> bool:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._start_timeout
        while loop.time() < give_up and proc.returncode is None:
            try:
                await probe()
                return True
            except Exception:  # noqa: BLE001 - not up yet, whatever the error
                await asyncio.sleep(0.1)
        with contextlib.suppress(TimeoutError):  # an exit the probe noticed first: let wait() reap it
            await asyncio.wait_for(proc.wait(), 0.2)
        return False

    async def stop(self) -> None:
        """Stop supervising, then end the process: SIGTERM, SIGKILL after ``stop_wait`` seconds."""
        if self._task:
            await cancel_and_wait([self._task])
            self._task = None
        await self._terminate()
        await self._drain_relay()

    async def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        for sig, wait in ((signal.SIGTERM, self._stop_wait), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                await asyncio.wait_for(proc.wait(), wait)
                return
            except TimeoutError:
                log.warning(
                    "%s: ComfyUI pid %s still running %gs after %s", self.name, proc.pid, wait, sig.name
                )


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


def _launcher() -> tuple[str, ...]:
    """The prefix that makes a command die with this process (see ``generator_service.launcher``).

    Run by file path, not as a module, in isolated mode (``-I``: nothing of the working directory
    or of ``PYTHON*`` variables on its path): it needs only the standard library, and the
    command's working directory must not decide whether it can be found. The command still gets
    the whole environment.
    """
    return (sys.executable, "-I", launcher.__file__, str(os.getpid()), "--")
