"""A fresh stack per scenario, on a MinIO of our own, torn down whatever happens.

Each fault kills or disturbs something, so no scenario inherits another's
state: each gets its own work directory, MinIO, simulator and services. The
stack is started outside the scenario's time bound (start-up has its own
timeout) so that a scenario cut short never leaves a half-started stack.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from grpc import aio
from minio import Minio

from bench.faults.minio import PinnedMinio
from bench.faults.observe import media_key, set_faults, sim_state, stored_run_id, uploads_under
from bench.faults.watch import MiB, RunWatch
from mediagen.stack.local import LocalStack, StackConfig
from mediagen.v1 import gateway_pb2


@dataclass
class Row:
    """One line of the report; None means not measured, ``freed`` may also be a word."""

    scenario: str
    code: str = "-"
    to_status: float | None = None
    baseline: str = ""
    freed: float | str | None = None
    partial: int | None = None
    uploads: int | None = None
    duplicates: int | None = None
    notes: list[str] = field(default_factory=list)


class Rig:
    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="mediagen-faults-"))
        self.minio = PinnedMinio(self.work / "minio")
        self.stack: LocalStack | None = None
        self.http = httpx.AsyncClient()
        self.channel: aio.Channel | None = None

    async def __aenter__(self) -> Rig:
        try:
            endpoint = await asyncio.to_thread(self.minio.start)
            config = StackConfig(work_dir=self.work, minio=endpoint, comfyui_url="", comfyui_command="")
            self.stack = LocalStack(config)
            await asyncio.to_thread(self.stack.start)
            self.channel = aio.insecure_channel(self.stack.gateway_address)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
        await self.http.aclose()
        if self.stack is not None:
            await asyncio.to_thread(self.stack.stop)
        await asyncio.to_thread(self.minio.stop)
        shutil.rmtree(self.work, ignore_errors=True)

    @property
    def s(self) -> LocalStack:
        assert self.stack is not None
        return self.stack

    @property
    def client(self) -> Minio:
        return self.minio.endpoint.client()

    async def faults(self, **faults: Any) -> None:
        await set_faults(self.http, self.s.comfyui_url, **faults)

    async def state(self) -> dict[str, Any]:
        return await sim_state(self.http, self.s.comfyui_url)

    def start_run(self, *outputs: gateway_pb2.OutputSpec, run_id: str, timeout: float) -> RunWatch:
        assert self.channel is not None
        request = gateway_pb2.GatewayGenerateRequest(run_id=run_id, outputs=outputs)
        return RunWatch(self.channel, request, timeout)

    async def mid_transfer(self, watch: RunWatch, after_bytes: int, limit: float = 40.0) -> None:
        """Return once the simulator has served ``after_bytes`` of this run's file."""
        await asyncio.wait_for(watch.accepted.wait(), limit)
        before = int((await self.state())["bytes_served"])
        deadline = time.monotonic() + limit
        while int((await self.state())["bytes_served"]) - before < after_bytes:
            if watch.status.done():
                raise RuntimeError(f"the run ended before the fault: {watch.status.result()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {after_bytes / MiB:.0f} MiB served in {limit:.0f}s")
            await asyncio.sleep(0.05)

    async def uploads_now(self, run_id: str) -> int:
        return await asyncio.to_thread(
            uploads_under, self.client, self.s.bucket, f"runs/{stored_run_id(run_id)}/", (media_key(run_id),)
        )
