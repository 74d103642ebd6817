"""Per-prompt node progress, published as ComfyUI's ``progress_state`` messages.

Each message carries every node that has started so far (not only the one that changed), with
``state`` ``running``/``finished``. Values keep the real server's types: a started node is
``0.0/1.0``, a node finished from cache is ``1/1``, progress updates carry the node's own ints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Progress:
    def __init__(self, prompt_id: str, publish: Callable[[dict[str, Any]], None]) -> None:
        self.prompt_id = prompt_id
        self.publish = publish
        self.nodes: dict[str, dict[str, Any]] = {}

    def _entry(self, node_id: str) -> dict[str, Any]:
        return self.nodes.setdefault(node_id, {"value": 0, "max": 1, "state": "pending"})

    def _send(self) -> None:
        nodes = {
            node_id: {
                "value": s["value"],
                "max": s["max"],
                "state": s["state"],
                "node_id": node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
            for node_id, s in self.nodes.items()
            if s["state"] != "pending"
        }
        self.publish({"prompt_id": self.prompt_id, "nodes": nodes})

    def start(self, node_id: str) -> None:
        self.nodes[node_id] = {"value": 0.0, "max": 1.0, "state": "running"}
        self._send()

    def update(self, node_id: str, value: float, total: float) -> None:
        entry = self._entry(node_id)
        entry.update(value=value, max=total, state="running")
        self._send()

    def finish(self, node_id: str, cached: bool = False) -> None:
        entry = self._entry(node_id)
        entry.update(state="finished", value=entry["max"])
        self._send()
