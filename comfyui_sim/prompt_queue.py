"""The prompt queue and the history store, with ComfyUI's exact bookkeeping.

``number`` orders the heap (``front`` makes it negative), ``queue_remaining`` counts running plus
pending, deleting removes only the first pending match, and history is an insertion-ordered
dict capped at 10,000 entries. Every change that the real server announces with a ``status``
broadcast is announced here too.
"""

from __future__ import annotations

import asyncio
import copy
import heapq
from collections.abc import Callable
from typing import Any

QueueItem = tuple[Any, str, dict[str, Any], dict[str, Any], list[str]]
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


class PromptQueue:
    def __init__(self, on_change: Callable[[], None], history_size: int) -> None:
        self.on_change = on_change
        self.history_size = history_size
        self.queue: list[QueueItem] = []
        self.running: dict[int, QueueItem] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self.flags: dict[str, Any] = {}
        self.counter = 0
        self.not_empty = asyncio.Event()

    def put(self, item: QueueItem) -> None:
        heapq.heappush(self.queue, item)
        self.on_change()
        self.not_empty.set()

    async def get(self) -> tuple[QueueItem, int] | None:
        """The next item, or None when woken by a flag (``/free``) while idle."""
        while not self.queue:
            if self.flags:
                return None
            self.not_empty.clear()
            await self.not_empty.wait()
        item = heapq.heappop(self.queue)
        index = self.counter
        self.counter += 1
        self.running[index] = copy.deepcopy(item)
        self.on_change()
        return item, index

    def task_done(self, index: int, result: dict[str, Any], status: dict[str, Any]) -> None:
        item = self.running.pop(index)
        if len(self.history) >= self.history_size:
            self.history.pop(next(iter(self.history)))
        extra = item[3]
        for key in SENSITIVE_EXTRA_DATA_KEYS:
            extra.pop(key, None)
        self.history[item[1]] = {"prompt": list(item), "outputs": {}, "status": status, **result}
        self.on_change()

    def remaining(self) -> int:
        return len(self.queue) + len(self.running)

    def current(self) -> tuple[list[QueueItem], list[QueueItem]]:
        return list(self.running.values()), list(self.queue)

    def running_ids(self) -> list[str]:
        return [item[1] for item in self.running.values()]

    def wipe(self) -> None:
        self.queue = []
        self.on_change()

    def delete(self, prompt_id: str) -> bool:
        for index, item in enumerate(self.queue):
            if item[1] == prompt_id:
                if len(self.queue) == 1:
                    self.wipe()
                else:
                    self.queue.pop(index)
                    heapq.heapify(self.queue)
                self.on_change()
                return True
        return False

    def get_history(
        self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1
    ) -> dict[str, Any]:
        if prompt_id is not None:
            return {prompt_id: copy.deepcopy(self.history[prompt_id])} if prompt_id in self.history else {}
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        out: dict[str, Any] = {}
        for position, (key, entry) in enumerate(self.history.items()):
            if position >= offset:
                out[key] = entry
                if max_items is not None and len(out) >= max_items:
                    break
        return out

    def set_flag(self, name: str, value: Any) -> None:
        self.flags[name] = value
        self.not_empty.set()

    def take_flags(self) -> dict[str, Any]:
        flags, self.flags = self.flags, {}
        return flags
