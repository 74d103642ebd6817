"""The JSON endpoints: prompt, queue, interrupt, history, free, system info, object_info.

Status codes and bodies follow the real server, including its rough edges: a non-JSON body or a
``prompt`` that is a list is an unhandled exception (plain-text 500), queue/history/interrupt
always answer 200 with an empty body, and ``number`` advances on every submission.
"""

from __future__ import annotations

import platform
import sys
import uuid
from typing import Any

import psutil
from aiohttp import web

from .catalog import Catalog
from .executor import Executor
from .prompt_queue import PromptQueue
from .validation import validate_prompt


class Api:
    def __init__(self, queue: PromptQueue, executor: Executor, catalog: Catalog) -> None:
        self.queue, self.executor, self.catalog = queue, executor, catalog
        self.number = 0

    def queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.queue.remaining()}}

    def running_node_for(self, sid: str) -> str | None:
        return self.executor.running_node_for(sid)

    def add_to(self, routes: web.RouteTableDef) -> None:
        routes.get("/system_stats")(self.system_stats)
        routes.get("/features")(self.features)
        routes.get("/object_info")(self.object_info)
        routes.get("/object_info/{node_class}")(self.object_info_one)
        routes.get("/prompt")(self.get_prompt)
        routes.post("/prompt")(self.post_prompt)
        routes.get("/queue")(self.get_queue)
        routes.post("/queue")(self.post_queue)
        routes.post("/interrupt")(self.post_interrupt)
        routes.post("/free")(self.post_free)
        routes.get("/history")(self.get_history)
        routes.get("/history/{prompt_id}")(self.get_history_one)
        routes.post("/history")(self.post_history)

    async def system_stats(self, request: web.Request) -> web.Response:
        memory = psutil.virtual_memory()
        return web.json_response(
            {
                "system": {
                    "os": "posix" if sys.platform != "win32" else "nt",
                    "ram_total": memory.total,
                    "ram_free": memory.available,
                    "comfyui_version": "0.3.64",
                    "required_frontend_version": "1.27.10",
                    "installed_templates_version": "0.1.95",
                    "required_templates_version": "0.1.95",
                    "python_version": sys.version,
                    "pytorch_version": "none (comfyui-sim)",
                    "embedded_python": False,
                    "argv": ["comfyui_sim", *sys.argv[1:]],
                },
                "devices": [
                    {
                        "name": "cpu",
                        "type": "cpu",
                        "index": None,
                        "vram_total": memory.total,
                        "vram_free": memory.available,
                        "torch_vram_total": memory.total,
                        "torch_vram_free": memory.available,
                    }
                ],
            }
        )

    async def features(self, request: web.Request) -> web.Response:
        return web.json_response(self.executor.hub.server_features())

    async def object_info(self, request: web.Request) -> web.Response:
        return web.json_response(self.catalog.object_info())

    async def object_info_one(self, request: web.Request) -> web.Response:
        return web.json_response(self.catalog.object_info(request.match_info["node_class"]))

    async def get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self.queue_info())

    async def post_prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "number" in body:
            number: Any = float(body["number"])
        else:
            number = -self.number if body.get("front") else self.number
            self.number += 1
        if "prompt" not in body:
            missing = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            return web.json_response({"error": missing, "node_errors": {}}, status=400)
        prompt = body["prompt"]
        prompt_id = str(body.get("prompt_id", uuid.uuid4()))
        ok, error, outputs, node_errors = validate_prompt(
            prompt, self.catalog.nodes(), body.get("partial_execution_targets")
        )
        extra_data = dict(body.get("extra_data", {}))
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        if not ok:
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        self.queue.put((number, prompt_id, prompt, extra_data, outputs))
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": node_errors})

    async def get_queue(self, request: web.Request) -> web.Response:
        self.executor.stats.queue_requests += 1
        running, pending = self.queue.current()
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self.queue.wipe()
        for prompt_id in body.get("delete", []):
            self.queue.delete(prompt_id)
        return web.Response(status=200)

    async def post_interrupt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        self.executor.interrupt(prompt_id or None)
        return web.Response(status=200)

    async def post_free(self, request: web.Request) -> web.Response:
        body = await request.json()
        for key in ("unload_models", "free_memory"):
            if body.get(key):
                self.queue.set_flag(key, body[key])
        return web.Response(status=200)

    async def get_history(self, request: web.Request) -> web.Response:
        query = request.rel_url.query
        max_items = int(query["max_items"]) if "max_items" in query else None
        offset = int(query["offset"]) if "offset" in query else -1
        return web.json_response(self.queue.get_history(max_items=max_items, offset=offset))

    async def get_history_one(self, request: web.Request) -> web.Response:
        self.executor.stats.history_reads += 1
        return web.json_response(self.queue.get_history(prompt_id=request.match_info["prompt_id"]))

    async def post_history(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self.queue.history.clear()
        if body.get("delete"):
            self.executor.stats.history_delete_requests += 1
        for prompt_id in body.get("delete", []):
            self.queue.history.pop(prompt_id, None)
        return web.Response(status=200)


def platform_name() -> str:
    return platform.system()
