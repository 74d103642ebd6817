"""Execution order and cache signatures.

Order matters to clients that read ``executing`` events: ComfyUI dissolves the graph from the
output nodes, and among ready nodes prefers an output node, then a node that unblocks an output
node (one or two levels down). Ties between such nodes are broken here by prompt order; the real
server breaks them by the order of a set of output ids, which changes with each process's string
hashing, so no client may rely on the order of sibling outputs.

Cache hits depend on a node's *content* (class, literal inputs, upstream signatures), not on its
id, so an identical graph resubmitted is a full cache hit.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from .schema import NodeDef

_nonce = itertools.count()


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def signatures(prompt: dict[str, Any], catalog: dict[str, NodeDef]) -> dict[str, str]:
    """A content signature per node; nodes that always change get a fresh one each time."""
    done: dict[str, str] = {}

    def sign(node_id: str, trail: frozenset[str]) -> str:
        if node_id in done:
            return done[node_id]
        node = prompt.get(node_id)
        if not isinstance(node, dict) or node_id in trail:
            return f"missing:{node_id}"
        defn = catalog.get(node.get("class_type", ""))
        parts: list[Any] = [node.get("class_type")]
        if defn is not None and defn.always_changed:
            parts.append(f"nonce:{next(_nonce)}")
        if defn is not None and defn.change_key is not None:
            parts.append(defn.change_key(node.get("inputs", {})))
        for name, value in sorted(node.get("inputs", {}).items()):
            if is_link(value):
                parts.append([name, sign(str(value[0]), trail | {node_id}), value[1]])
            else:
                parts.append([name, value])
        done[node_id] = json.dumps(parts, sort_keys=True, default=str)
        return done[node_id]

    for node_id in prompt:
        sign(node_id, frozenset())
    return done


class Plan:
    """The pending nodes of one prompt, released in ComfyUI's order."""

    def __init__(self, prompt: dict[str, Any], catalog: dict[str, NodeDef], cached: set[str]) -> None:
        self.prompt = prompt
        self.catalog = catalog
        self.cached = cached
        self.pending: dict[str, bool] = {}
        self.block_count: dict[str, int] = {}
        self.blocking: dict[str, dict[str, bool]] = {}

    def _is_output(self, node_id: str) -> bool:
        return self.catalog[self.prompt[node_id]["class_type"]].output_node

    def add(self, node_id: str) -> None:
        stack = [node_id]
        links: list[tuple[str, str]] = []
        while stack:
            current = stack.pop()
            if current in self.pending:
                continue
            self.pending[current] = True
            self.block_count[current] = 0
            self.blocking[current] = {}
            for value in self.prompt[current]["inputs"].values():
                if is_link(value) and str(value[0]) not in self.cached:
                    stack.append(str(value[0]))
                    links.append((str(value[0]), current))
        for source, target in links:
            if target not in self.blocking[source]:
                self.blocking[source][target] = True
                self.block_count[target] += 1

    def empty(self) -> bool:
        return not self.pending

    def pick(self) -> str | None:
        ready = [n for n in self.pending if self.block_count[n] == 0]
        if not ready:
            return None
        for node in ready:
            if self._is_output(node):
                return node
        for node in ready:
            if any(self._is_output(b) for b in self.blocking[node]):
                return node
        for node in ready:
            for below in self.blocking[node]:
                if any(self._is_output(b) for b in self.blocking.get(below, {})):
                    return node
        return ready[0]

    def complete(self, node_id: str) -> None:
        del self.pending[node_id]
        for blocked in self.blocking.pop(node_id):
            self.block_count[blocked] -= 1
