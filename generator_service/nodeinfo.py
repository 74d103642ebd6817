"""Each backend's node catalogue (``/object_info``), fetched once per lifetime and shared.

A raw graph is checked against it before anything is created (see
:mod:`generator_service.graphcheck`). The catalogue is large on a real ComfyUI (megabytes of
JSON) and changes only when nodes or models are installed, so it is kept for ``ttl`` seconds
per backend; one fetch at a time per backend, however many requests wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from generator_service.backends import Backend
from generator_service.comfy.client import BackendUnreachable

log = logging.getLogger("mediagen.generator.nodeinfo")


class NodeCatalogs:
    def __init__(self, ttl: float = 60.0) -> None:
        self._ttl = ttl
        self._cached: dict[str, tuple[float, dict[str, Any]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def of_any(self, backends: Sequence[Backend]) -> dict[str, Any] | None:
        """The catalogue of the first backend that is up and answers; None when none does."""
        for backend in backends:
            if backend.up:
                nodes = await self.of(backend)
                if nodes is not None:
                    return nodes
        return None

    async def of(self, backend: Backend) -> dict[str, Any] | None:
        async with self._locks.setdefault(backend.url, asyncio.Lock()):
            cached = self._cached.get(backend.url)
            if cached is not None and time.monotonic() - cached[0] < self._ttl:
                return cached[1]
            try:
                nodes = await backend.client.object_info()
            except BackendUnreachable as exc:
                log.warning("no node catalogue from %s: %s", backend.name, exc)
                return None
            self._cached[backend.url] = (time.monotonic(), nodes)
            return nodes
