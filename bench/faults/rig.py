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
from typing import Any, Self

import httpx
from grpc import aio
from minio import Minio

from bench.faults.minio import PinnedMinio
from bench.faults.observe import Leftovers, media_key, set_faults, settled_leftovers, sim_state, uploads_under
from bench.faults.watch import MiB, RunWatch, Status
from mediagen.stack.local import LocalStack, StackConfig
from mediagen.stack.minio import MinioEndpoint
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

    def freed_after(self, seconds: float | None) -> None:
        """ComfyUI freed this many seconds after the fault (shown in ms), or ``NO`` when it was not."""
        self.freed = "NO" if seconds is None else seconds * 1000

    def heard(self, status: Status | None, since: float) -> None:
        """The caller's status and how long after ``since`` (the fault) it came, if it came."""
        if status is not None:
            self.code, self.to_status = status.code, status.at - since


class Rig:
    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="mediagen-faults-"))
        self.minio = PinnedMinio(self.work / "minio")
        self.stack: LocalStack | None = None
        self.http = httpx.AsyncClient()
        self.channel: aio.Channel | None = None

    async def __aenter__(self) -> Self:
        try:
            endpoint = await self.storage_endpoint()
            config = StackConfig(work_dir=self.work, minio=endpoint, comfyui_url="", comfyui_command="")
            self.stack = LocalStack(config)
            await asyncio.to_thread(self.stack.start)
            self.channel = aio.insecure_channel(self.stack.gateway_address)
        except BaseException:
            await self.close()
            raise
        return self

    async def storage_endpoint(self) -> MinioEndpoint:
        """Start the rig's MinIO; what the storage service is told to use."""
        return await asyncio.to_thread(self.minio.start)

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

    async def kill_generator_executing(self, watch: RunWatch) -> float:
        """SIGKILL the generator a second after the run was accepted (its prompt executing); when."""
        await asyncio.wait_for(watch.accepted.wait(), 20)
        await asyncio.sleep(1.0)
        killed_at = time.monotonic()
        await asyncio.to_thread(self.s.processes["generator"].kill)
        return killed_at

    async def settle(self, row: Row, run_id: str, limit: float) -> tuple[Leftovers, float | None]:
        """Wait up to ``limit`` for the run's uploads to be cleaned up; the row gets what is left."""
        found, took = await settled_leftovers(self.client, self.s.bucket, run_id, limit)
        row.partial, row.uploads, row.duplicates = found.partial, found.uploads, found.duplicates
        return found, took

    async def uploads_now(self, run_id: str) -> int:
        return await asyncio.to_thread(
            uploads_under, self.client, self.s.bucket, f"runs/{run_id}/", (media_key(run_id),)
        )
