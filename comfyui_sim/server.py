"""Assembles the aiohttp application and runs it: the programmatic entry point.

Routes are registered at ``/X`` and ``/api/X`` like the real server, behind the same Origin/Host
check (a loopback Host with a different Origin gets 403). ``start_simulator`` binds (port 0
works), starts the prompt worker and the WebSocket publish loop, and returns a handle whose
``stop()`` tears everything down and removes a temporary data directory it created.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shutil
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from sim_scaffold.serving import listen

from .catalog import Catalog
from .config import Faults, SimulatorConfig
from .control import Control
from .executor import Executor
from .file_routes import Files
from .files import Folders
from .hub import Hub
from .prompt_queue import PromptQueue
from .routes import Api

SOCKET_CLOSE_WAIT = 1.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@web.middleware
async def origin_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse cross-site requests to a loopback server (Host and Origin disagree)."""
    host, origin = request.headers.get("Host"), request.headers.get("Origin")
    if host is not None and origin is not None:
        parsed = urllib.parse.urlparse(origin)
        host_parsed = urllib.parse.urlsplit("//" + host.lower())
        host_domain: str | None = host.lower()
        origin_domain: str | None = parsed.netloc.lower()
        if parsed.port is None:
            host_domain = host_parsed.hostname
        if host_parsed.port is None:
            origin_domain = parsed.hostname
        if _loopback(host_parsed.hostname) and host_domain and origin_domain and host_domain != origin_domain:
            return web.Response(status=403)
    return await handler(request)


@dataclass
class SimulatorHandle:
    """A running simulator. ``faults`` is live: edit it and the next request/node sees it."""

    url: str
    faults: Faults
    data_dir: Path
    executor: Executor
    control: Control
    _runner: web.AppRunner
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _owned_dir: bool = False

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :] + "/ws"

    def state(self) -> dict[str, object]:
        """Same content as ``GET /sim/state``."""
        return self.control.state()

    async def stop(self) -> None:
        for ws in list(self.executor.hub.all_sockets):
            # A client that died never answers the close frame: do not wait for it.
            with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
                await asyncio.wait_for(ws.close(), SOCKET_CLOSE_WAIT)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._runner.cleanup()
        if self._owned_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def build_app(config: SimulatorConfig, data_dir: Path) -> tuple[web.Application, Executor, Control]:
    folders = Folders(data_dir)
    folders.create()
    faults = config.faults
    hub = Hub(faults, config.max_upload_size)
    queue = PromptQueue(lambda: hub.send_sync("status", {"status": api.queue_info()}), config.history_size)
    catalog = Catalog(folders)
    executor = Executor(hub, queue, catalog, faults)
    api = Api(queue, executor, catalog)
    files = Files(folders, faults)
    routes = web.RouteTableDef()
    api.add_to(routes)
    files.add_to(routes)

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        return await hub.handle(request, api)

    routes.get("/ws")(websocket)
    app = web.Application(middlewares=[origin_only], client_max_size=config.max_upload_size)
    app.add_routes(routes)
    app.add_routes(
        [
            web.RouteDef(r.method, "/api" + r.path, r.handler, r.kwargs)
            for r in routes
            if isinstance(r, web.RouteDef)
        ]
    )
    control = Control(faults, executor, files)
    control.add_to(app)
    return app, executor, control


async def start_simulator(config: SimulatorConfig | None = None) -> SimulatorHandle:
    """Start a simulator and return once it accepts connections."""
    config = config or SimulatorConfig()
    owned = config.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="comfyui-sim-")) if owned else Path(config.data_dir or ".")
    data_dir = data_dir.resolve()
    app, executor, control = build_app(config, data_dir)
    runner, url = await listen(app, config.host, config.port, access_log=False)
    tasks = [asyncio.create_task(executor.hub.publish_loop()), asyncio.create_task(executor.run_forever())]
    return SimulatorHandle(url, config.faults, data_dir, executor, control, runner, tasks, owned)


@contextlib.asynccontextmanager
async def running_simulator(config: SimulatorConfig | None = None) -> AsyncIterator[SimulatorHandle]:
    """``async with running_simulator(cfg) as sim:`` -- started on entry, stopped on exit."""
    handle = await start_simulator(config)
    try:
        yield handle
    finally:
        await handle.stop()
