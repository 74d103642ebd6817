"""Binding a simulator's port and running one as a process until SIGTERM/SIGINT.

A parent process (a test, the stack runner, a container) starts a simulator and reads its URL
from the first line of stdout, ``<name> listening on http://HOST:PORT``, with the real port when
``--port 0`` asked for any free one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar

from aiohttp import web

from .control import Logged
from .faults import FaultKnobs


class Running(Protocol):
    """What the command line needs of a started simulator."""

    @property
    def url(self) -> str: ...

    async def stop(self) -> None: ...


async def listen(
    app: web.Application, host: str, port: int, *, access_log: bool = True
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host:port`` (0: any free port); return the runner and the base URL."""
    options: dict[str, Any] = {} if access_log else {"access_log": None}
    runner = web.AppRunner(app, shutdown_timeout=1.0, **options)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server: Any = site._server  # aiohttp exposes the bound port only here
    bound = server.sockets[0].getsockname()[1]
    return runner, f"http://{host if ':' not in host else f'[{host}]'}:{bound}"


async def serve_until_signalled(
    handle: Running, name: str, signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
) -> None:
    """Announce the URL, wait for one of ``signals``, then stop the simulator."""
    print(f"{name} listening on {handle.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await handle.stop()


def provider_arguments(
    prog: str, description: str | None, port: int, key_env: str, key_word: str
) -> argparse.ArgumentParser:
    """The flags of a hosted-API simulator: where to listen, the key's variable, initial faults.

    The expected bearer credential is read from the variable ``--api-key-env`` names, never from
    the command line, where other users of the machine could read it.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--api-key-env", default=key_env, help=f"variable holding the expected {key_word}")
    parser.add_argument("--faults-json", default=None, help="a JSON object of Faults fields")
    return parser


def apply_faults_json(faults: FaultKnobs, text: str | None) -> None:
    """Apply the ``--faults-json`` flag's object, when it was given."""
    if text:
        faults.update(json.loads(text))


class Hosted(Protocol):
    """What the handle needs of a simulator: its URL to set, its request log, a way to halt."""

    url: str
    log: list[Logged]

    def halt(self) -> None:
        """Let go of work in flight (hung requests, running jobs) before the server closes."""


SimT = TypeVar("SimT", bound=Hosted)
FaultsT = TypeVar("FaultsT", bound=FaultKnobs)


@dataclass
class SimHandle(Generic[SimT, FaultsT]):
    """A running simulator: its URL, its live fault knobs, the requests it answered."""

    url: str
    simulator: SimT
    faults: FaultsT
    """Live: edit it and the next request sees it."""
    _runner: web.AppRunner

    @property
    def log(self) -> list[Logged]:
        return self.simulator.log

    async def stop(self) -> None:
        self.simulator.halt()
        await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_hosted(
    simulator: SimT, faults: FaultsT, app: web.Application, host: str, port: int
) -> SimHandle[SimT, FaultsT]:
    """Serve ``app`` and tell ``simulator`` its URL (its outputs link to it) before any request."""
    runner, simulator.url = await listen(app, host, port)
    return SimHandle(simulator.url, simulator, faults, runner)
