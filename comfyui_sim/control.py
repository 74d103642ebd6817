"""Simulator-only control endpoints under ``/sim/`` (a real ComfyUI has none of these).

``POST /sim/faults`` takes a partial :class:`~comfyui_sim.config.Faults` as JSON (``{"reset": true}``
first restores the defaults) and ``GET /sim/state`` reports what tests assert on: what runs, what
waits, interrupts received, files served, WebSocket clients. They let a test drive a simulator
that runs as a separate process exactly as the in-process ``sim.faults`` object does.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sim_scaffold.control import change_faults

from .config import Faults
from .executor import Executor
from .file_routes import Files


class Control:
    def __init__(self, faults: Faults, executor: Executor, files: Files) -> None:
        self.faults, self.executor, self.files = faults, executor, files

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/sim/faults", self.post_faults)
        app.router.add_get("/sim/faults", self.get_faults)
        app.router.add_get("/sim/state", self.get_state)

    async def post_faults(self, request: web.Request) -> web.Response:
        return await change_faults(self.faults, request)

    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults.as_dict())

    def state(self) -> dict[str, Any]:
        executor = self.executor
        running, pending = executor.queue.current()
        stats = executor.stats
        return {
            "running": [item[1] for item in running],
            "pending": [item[1] for item in sorted(pending)],
            "running_node": executor.last_node_id,
            "interrupts": stats.interrupts,
            "prompts_run": stats.prompts_run,
            "prompts_run_twice": sorted(p for p, runs in stats.runs_by_prompt.items() if runs > 1),
            "nodes_executed": stats.nodes_executed,
            "executed_classes": dict(stats.executed_classes),
            "frees": stats.frees,
            "history_delete_requests": stats.history_delete_requests,
            "queue_requests": stats.queue_requests,
            "history_reads": stats.history_reads,
            "files_served": self.files.stats.files_served,
            "bytes_served": self.files.stats.bytes_served,
            "view_requests": list(self.files.stats.view_requests),
            "uploads": self.files.stats.uploads,
            "ws_clients": sorted(executor.hub.sockets),
            "ws_events_sent": executor.hub.events_sent,
            "ws_drops": executor.hub.drops,
            "history_size": len(executor.queue.history),
            "faults": self.faults.as_dict(),
        }

    async def get_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())
