"""The prompt worker: runs queued prompts one at a time and emits ComfyUI's event stream.

The order of events is the contract clients depend on, so it follows the real server step by
step: ``execution_start``, ``execution_cached``, per node ``progress_state`` -> ``executing`` ->
(``progress``/previews) -> ``executed`` -> ``progress_state``; then ``execution_success`` (or
``execution_error``/``execution_interrupted``), the history write, a ``status`` broadcast and only
then ``executing {node: null}``. Without a client_id only ``progress_state``/``progress`` (broadcast)
and ``execution_interrupted`` (broadcast) are sent.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import media
from .catalog import Catalog
from .config import Faults, node_matches
from .context import Interrupted, InterruptFlag, NodeResult, RunContext
from .graph import Plan, is_link, signatures
from .hub import PREVIEW_IMAGE, PREVIEW_IMAGE_WITH_METADATA, Hub
from .progress import Progress
from .prompt_queue import PromptQueue, QueueItem
from .validation import full_type_name


@dataclass
class CacheEntry:
    values: tuple[Any, ...]
    ui: dict[str, Any] | None


@dataclass
class Stats:
    prompts_run: int = 0
    interrupts: int = 0
    nodes_executed: int = 0
    frees: int = 0
    history_delete_requests: int = 0
    queue_requests: int = 0
    history_reads: int = 0
    """``GET /history/{prompt_id}`` requests answered."""
    executed_classes: dict[str, int] = field(default_factory=dict)
    runs_by_prompt: dict[str, int] = field(default_factory=dict)
    """How often each prompt id started executing: a job run twice shows up here."""


def _format(value: Any) -> Any:
    return value if value is None or isinstance(value, (int, float, bool, str)) else str(value)


class Executor:
    def __init__(self, hub: Hub, queue: PromptQueue, catalog: Catalog, faults: Faults) -> None:
        self.hub, self.queue, self.catalog, self.faults = hub, queue, catalog, faults
        self.flag = InterruptFlag()
        self.cache: dict[str, CacheEntry] = {}
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self.running_prompt_id: str | None = None
        self.stats = Stats()

    def running_node_for(self, sid: str) -> str | None:
        return self.last_node_id if self.client_id == sid else None

    def interrupt(self, prompt_id: str | None) -> None:
        """Global when ``prompt_id`` is None, else only if that prompt is the running one."""
        self.stats.interrupts += 1
        if prompt_id is None or prompt_id in self.queue.running_ids():
            self.flag.set()

    async def run_forever(self) -> None:
        while True:
            got = await self.queue.get()
            if got is not None:
                await self._run_item(*got)
            flags = self.queue.take_flags()
            if flags.get("free_memory"):
                self.cache.clear()
            if flags:
                self.stats.frees += 1

    async def _run_item(self, item: QueueItem, index: int) -> None:
        self.running_prompt_id = item[1]
        result, status = await self.execute(item)
        if self.faults.history_delay_s > 0:
            await asyncio.sleep(self.faults.history_delay_s)
        if self.faults.history_injected_files:
            injected = [dict(entry) for entry in self.faults.history_injected_files]
            result["outputs"] = {"0": {"images": injected}, **result["outputs"]}
        self.queue.task_done(index, result, status)
        self.running_prompt_id = None
        if self.client_id is not None and not self.faults.silent_prompts:
            self._send_for_prompt("executing", {"node": None, "prompt_id": item[1]}, self.client_id)

    def _emit(self, event: str | int, data: Any, to_client: bool = True, broadcast: bool = False) -> None:
        if self.faults.silent_prompts:
            return
        if self.client_id is not None and to_client:
            self._send_for_prompt(event, data, self.client_id)
        elif self.client_id is None and broadcast:
            self.hub.send_sync(event, data, None)

    def _send_for_prompt(self, event: str | int, data: Any, sid: str | None) -> None:
        """Send a prompt's event; with ``ws_foreign_events`` a copy goes out for another prompt."""
        self.hub.send_sync(event, data, sid)
        if self.faults.ws_foreign_events and isinstance(data, dict) and data.get("prompt_id"):
            _, pending = self.queue.current()
            others = [item[1] for item in sorted(pending) if item[1] != data["prompt_id"]]
            other = others[0] if others else f"foreign-{uuid.uuid4()}"
            self.hub.send_sync(event, {**data, "prompt_id": other}, sid)

    async def execute(self, item: QueueItem) -> tuple[dict[str, Any], dict[str, Any]]:
        _, prompt_id, prompt, extra_data, outputs = item
        self.flag.clear()
        self.stats.prompts_run += 1
        self.stats.runs_by_prompt[prompt_id] = self.stats.runs_by_prompt.get(prompt_id, 0) + 1
        self.client_id = extra_data.get("client_id")
        messages: list[list[Any]] = []

        def message(event: str, data: dict[str, Any], broadcast: bool = False) -> None:
            data = {**data, "timestamp": int(time.time() * 1000)}
            messages.append([event, data])
            self._emit(event, data, broadcast=broadcast)

        message("execution_start", {"prompt_id": prompt_id})
        catalog = self.catalog.nodes()
        sigs = signatures(prompt, catalog)
        used = set(sigs.values())
        self.cache = {k: v for k, v in self.cache.items() if k in used}
        cached = [n for n in prompt if sigs[n] in self.cache]
        message("execution_cached", {"nodes": cached, "prompt_id": prompt_id})
        progress = Progress(prompt_id, lambda data: self._emit("progress_state", data, broadcast=True))
        plan = Plan(prompt, catalog, set(cached))
        for out in outputs:
            plan.add(out)
        executed: list[str] = []
        visited: list[str] = []
        success = True

        def stopped_at(node_id: str) -> dict[str, Any]:
            """What both ending events say: the node that stopped the prompt, what ran before it."""
            return {
                "prompt_id": prompt_id,
                "node_id": node_id,
                "node_type": prompt[node_id]["class_type"],
                "executed": list(executed),
            }

        while not plan.empty():
            node_id = plan.pick()
            if node_id is None:
                break
            visited.append(node_id)
            try:
                await self._run_node(prompt_id, prompt, node_id, sigs, progress, executed)
            except Interrupted:
                success = False
                message("execution_interrupted", stopped_at(node_id), broadcast=True)
                break
            except NodeFailure as failure:
                success = False
                details = {**stopped_at(node_id), **failure.details, "current_outputs": list(prompt)}
                message("execution_error", details)
                break
            plan.complete(node_id)
        else:
            if self.faults.history_injected_files:
                injected = [dict(entry) for entry in self.faults.history_injected_files]
                output = {"images": injected}
                self._emit(
                    "executed", {"node": "0", "display_node": "0", "output": output, "prompt_id": prompt_id}
                )
            message("execution_success", {"prompt_id": prompt_id})
        self.last_node_id = None
        ui_nodes = visited + [n for n in prompt if n not in visited]
        outputs_ui: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for node_id in ui_nodes:
            entry = self.cache.get(sigs[node_id])
            if entry is not None and entry.ui:
                outputs_ui[node_id] = entry.ui
                meta[node_id] = {
                    "node_id": node_id,
                    "display_node": node_id,
                    "parent_node": None,
                    "real_node_id": node_id,
                }
        status = {"status_str": "success" if success else "error", "completed": success, "messages": messages}
        return {"outputs": outputs_ui, "meta": meta}, status

    async def _run_node(
        self,
        prompt_id: str,
        prompt: dict[str, Any],
        node_id: str,
        sigs: dict[str, str],
        progress: Progress,
        executed: list[str],
    ) -> None:
        node = prompt[node_id]
        class_type = node["class_type"]
        entry = self.cache.get(sigs[node_id])
        if entry is not None and self.faults.cached_nodes_silent:
            progress.finish(node_id, cached=True)
            return
        if entry is not None:
            self._emit(
                "executed",
                {
                    "node": node_id,
                    "display_node": node_id,
                    "output": entry.ui or None,
                    "prompt_id": prompt_id,
                },
            )
            progress.finish(node_id, cached=True)
            return
        progress.start(node_id)
        self.last_node_id = node_id
        self._emit("executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id})
        defn = self.catalog.nodes()[class_type]
        inputs = self._gather(node["inputs"], sigs, defn)
        try:
            if self.flag.is_set():
                raise Interrupted()
            await self._apply_faults(node_id, class_type)
            ctx = RunContext(
                prompt_id,
                node_id,
                class_type,
                prompt,
                self.catalog.folders,
                self.faults,
                self.flag,
                lambda v, m, img: self._report(progress, node_id, v, m, img),
            )
            if node_matches(self.faults.hang_nodes, node_id, class_type):
                await ctx.hang()
            result: NodeResult = await defn.run(ctx, **inputs)
        except Interrupted:
            raise
        except Exception as ex:
            kind, _, tb = sys.exc_info()
            assert kind is not None
            raise NodeFailure(
                {
                    "exception_message": f"{ex}\n",
                    "exception_type": full_type_name(kind),
                    "traceback": traceback.format_tb(tb),
                    "current_inputs": self._current_inputs(inputs, defn, prompt),
                }
            ) from ex
        self.cache[sigs[node_id]] = CacheEntry(result.values, result.ui)
        self.stats.nodes_executed += 1
        self.stats.executed_classes[class_type] = self.stats.executed_classes.get(class_type, 0) + 1
        if result.ui:
            self._emit(
                "executed",
                {"node": node_id, "display_node": node_id, "output": result.ui, "prompt_id": prompt_id},
            )
        progress.finish(node_id)
        executed.append(node_id)

    @staticmethod
    def _current_inputs(inputs: dict[str, Any], defn: Any, prompt: dict[str, Any]) -> dict[str, Any]:
        shown = {k: [_format(v)] for k, v in inputs.items()}
        for name, kind in defn.hidden.items():
            shown[name] = [_format(prompt if kind == "PROMPT" else None)]
        return shown

    def _gather(self, raw: dict[str, Any], sigs: dict[str, str], defn: Any) -> dict[str, Any]:
        known = set(defn.required) | set(defn.optional)
        out: dict[str, Any] = {}
        for name, value in raw.items():
            if name not in known:
                continue
            if is_link(value):
                out[name] = self.cache[sigs[str(value[0])]].values[value[1]]
            else:
                out[name] = value
        return out

    async def _apply_faults(self, node_id: str, class_type: str) -> None:
        faults = self.faults
        if node_matches(faults.crash_on_node, node_id, class_type):
            os._exit(3)
        if node_matches(faults.drop_ws_on_node, node_id, class_type):
            await self.hub.flush()
            await self.hub.drop_all()
        key = node_matches(faults.node_delay_s, node_id, class_type)
        if key is not None:
            await asyncio.sleep(float(faults.node_delay_s[key]))
        key = node_matches(faults.uninterruptible_s, node_id, class_type)
        if key is not None:
            await asyncio.sleep(float(faults.uninterruptible_s[key]))  # deaf to the flag meanwhile
            if self.flag.is_set():
                raise Interrupted()
        key = node_matches(faults.fail_nodes, node_id, class_type)
        if key is not None:
            raise RuntimeError(faults.fail_nodes[key])

    async def _report(self, progress: Progress, node_id: str, value: int, total: int, image: Any) -> None:
        progress.update(node_id, value, total)
        png = media.png_bytes(image) if image is not None else None
        flagged = self.hub.supports_metadata(self.client_id)
        sid = self.client_id
        if png is not None and flagged:
            meta = {
                "node_id": node_id,
                "prompt_id": progress.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
            self._send_binary(PREVIEW_IMAGE_WITH_METADATA, self.hub.preview_with_metadata(png, meta), sid)
        if not self.faults.silent_prompts:
            self._send_for_prompt(
                "progress",
                {"value": value, "max": total, "prompt_id": progress.prompt_id, "node": node_id},
                sid,
            )
        if png is not None and not flagged:
            self._send_binary(PREVIEW_IMAGE, self.hub.preview_frame(png), sid)
        await asyncio.sleep(0)

    def _send_binary(self, event: int, payload: bytes, sid: str | None) -> None:
        if not self.faults.silent_prompts:
            self.hub.send_sync(event, payload, sid)


class NodeFailure(Exception):
    def __init__(self, details: dict[str, Any]) -> None:
        super().__init__(details.get("exception_message"))
        self.details = details
