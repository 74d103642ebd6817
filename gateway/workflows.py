"""The generator's template catalogue, cached for the gateway's ListWorkflows.

Callers (the CLI, UIs) list the templates often; one ListWorkflows call per
cache lifetime answers them all. Requests are not checked against this copy:
the generator owns the templates and their rules, and the gateway asks it
(see :mod:`gateway.validation`).
"""

from __future__ import annotations

import asyncio
import time

import grpc

from gateway.errors import peer_error
from gateway.peers import Peers
from mediagen.v1 import generator_pb2


class WorkflowCatalog:
    def __init__(self, peers: Peers, ttl: float) -> None:
        self._peers = peers
        self._ttl = ttl
        self._cached: generator_pb2.ListWorkflowsResponse | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def list(self) -> generator_pb2.ListWorkflowsResponse:
        async with self._lock:
            if self._cached is None or time.monotonic() - self._fetched_at > self._ttl:
                self._cached = await self._fetch()
                self._fetched_at = time.monotonic()
            return self._cached

    async def _fetch(self) -> generator_pb2.ListWorkflowsResponse:
        try:
            return await self._peers.generator.ListWorkflows(
                generator_pb2.ListWorkflowsRequest(), timeout=5.0
            )
        except grpc.RpcError as err:
            raise peer_error(err, "generator") from None
