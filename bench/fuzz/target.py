"""The running services a fuzz session talks to, and how one case is sent to them.

Every call goes over a real gRPC channel to a real server (in this process for the tests, other
processes for the benchmark). Answers are reduced to what the properties look at: the status
(code, message, serialized details), and for streams the events that say what happened (jobs
accepted, runs created, media stored, outputs failed) without keeping megabytes of media.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from minio import Minio

from bench.fuzz.cases import ANCHOR_RUNS, Case
from mediagen.scaffold.errors import code_from_status, status_details, status_of_rpc_error
from mediagen.v1 import gateway_pb2_grpc, generator_pb2_grpc, storage_pb2, storage_pb2_grpc

MiB = 1024 * 1024
DEADLINES = {"storage": 20.0, "generator": 8.0, "gateway": 20.0}
"""Seconds each call may take; a valid generation is tiny, so only a hang comes near them."""


@dataclass
class Status:
    code: grpc.StatusCode
    message: str
    details_bytes: int
    reason: str = ""


@dataclass
class Answer:
    status: Status
    prompt_ids: list[str] = field(default_factory=list)
    """Prompt ids of the jobs the generator accepted (``accepted`` events)."""
    run_created: str = ""
    stored: list[storage_pb2.MediaRecord] = field(default_factory=list)
    """Media written by this call (PutMedia's record, the gateway's media_stored)."""
    output_statuses: list[Status] = field(default_factory=list)
    """Statuses inside events: the gateway's output_failed and run_completed outcomes."""
    media_stored: int = 0
    events: int = 0


def _status_of_error(error: grpc.RpcError) -> Status:
    return _rpc_status(status_of_rpc_error(error))


OK = Status(grpc.StatusCode.OK, "", 0)


@dataclass
class Target:
    gateway: str
    generator: str
    storage: str
    minio: Minio
    bucket: str
    simulator_url: str
    channels: dict[str, aio.Channel] = field(default_factory=dict)
    http: httpx.AsyncClient | None = None

    async def open(self) -> None:
        options = [("grpc.max_send_message_length", 64 * MiB), ("grpc.max_receive_message_length", 64 * MiB)]
        for name in ("gateway", "generator", "storage"):
            self.channels[name] = aio.insecure_channel(getattr(self, name), options=options)
        self.http = httpx.AsyncClient(base_url=self.simulator_url, timeout=10.0)

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        if self.http is not None:
            await self.http.aclose()

    @property
    def storage_stub(self) -> storage_pb2_grpc.StorageServiceAsyncStub:
        return storage_pb2_grpc.StorageServiceStub(self.channels["storage"])  # type: ignore[return-value]

    async def create_anchors(self) -> list[str]:
        """The runs cases put media into; created fresh, or already there from an earlier session."""
        made = []
        for run_id in ANCHOR_RUNS:
            try:
                await self.storage_stub.CreateRun(storage_pb2.CreateRunRequest(run_id=run_id), timeout=10)
                made.append(run_id)
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.ALREADY_EXISTS:
                    raise
        return made

    async def health(self) -> dict[str, str]:
        """Each service's overall gRPC health status name."""
        states = {}
        for name, channel in self.channels.items():
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                answer = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
                states[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
            except grpc.RpcError as err:
                states[name] = f"unreachable ({err.code().name})"
        return states

    async def sim_state(self) -> dict[str, Any]:
        assert self.http is not None
        response = await self.http.get("/sim/state")
        response.raise_for_status()
        state: dict[str, Any] = response.json()
        return state

    async def sim_idle(self, within: float = 10.0) -> dict[str, Any]:
        """The simulator's state once nothing runs or waits (a cancelled job may still be leaving)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while True:
            state = await self.sim_state()
            if (not state["running"] and not state["pending"]) or loop.time() > end:
                return state
            await asyncio.sleep(0.05)

    async def call(self, case: Case) -> Answer:
        deadline = DEADLINES[case.service]
        stub: Any = {
            "gateway": gateway_pb2_grpc.GatewayServiceStub,
            "generator": generator_pb2_grpc.GeneratorServiceStub,
            "storage": storage_pb2_grpc.StorageServiceStub,
        }[case.service](self.channels[case.service])
        method: Callable[..., Any] = getattr(stub, case.method)
        answer = Answer(OK)
        try:
            if case.method == "PutMedia":
                assert isinstance(case.request, tuple)
                record = await method(_stream(case.request), timeout=deadline)
                answer.stored.append(record)
            elif case.method in ("Generate", "GetMedia"):
                call = method(case.request, timeout=deadline)
                try:
                    async for event in call:
                        _observe(answer, event)
                finally:
                    call.cancel()
            else:
                response = await method(case.request, timeout=deadline)
                if isinstance(response, storage_pb2.Run):
                    answer.run_created = response.run_id
        except grpc.RpcError as err:
            answer.status = _status_of_error(err)
        return answer


async def _stream(parts: tuple[Any, ...]) -> AsyncIterator[Any]:
    for part in parts:
        yield part


def _observe(answer: Answer, event: Any) -> None:
    answer.events += 1
    kind = event.WhichOneof("event") if "event" in event.DESCRIPTOR.oneofs_by_name else None
    if kind == "accepted":
        answer.prompt_ids.append(event.accepted.prompt_id)
    elif kind == "output_accepted":
        answer.prompt_ids.append(event.output_accepted.accepted.prompt_id)
    elif kind == "run_created":
        answer.run_created = event.run_created.run.run_id
    elif kind == "media_stored":
        answer.stored.append(event.media_stored.record)
    elif kind == "output_failed":
        answer.output_statuses.append(_rpc_status(event.output_failed.status))
    elif kind == "run_completed":
        answer.media_stored = event.run_completed.media_stored
        for outcome in event.run_completed.outputs:
            if outcome.HasField("error"):
                answer.output_statuses.append(_rpc_status(outcome.error))


def _rpc_status(status: Any) -> Status:
    return Status(
        code_from_status(status),
        status.message,
        sum(d.ByteSize() for d in status.details),
        status_details(status).reason,
    )
