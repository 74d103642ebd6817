"""One gateway run followed from the caller's side, so a fault can be timed.

The call runs in a task of its own; the benchmark waits for the moment to
strike (the prompt accepted, bytes flowing), injects its fault, then waits for
the first *clear status*: an ``output_failed`` event, the call's own error, or
a ``run_completed``. Its gRPC code, message and the time it arrived are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc import aio

from mediagen.v1 import gateway_pb2, gateway_pb2_grpc, generator_pb2

MiB = 1024 * 1024


def code_name(code: int) -> str:
    for status in grpc.StatusCode:
        if status.value[0] == code:
            return status.name
    return str(code)


def large_output(size_bytes: int, seed: int, timeout: float = 0.0) -> gateway_pb2.OutputSpec:
    params = {
        "size_bytes": generator_pb2.ParameterValue(int_value=size_bytes),
        "seed": generator_pb2.ParameterValue(int_value=seed),
    }
    spec = gateway_pb2.OutputSpec(
        workflow=generator_pb2.WorkflowSpec(template="large_image", parameters=params)
    )
    if timeout:
        spec.timeout.CopyFrom(duration_pb2.Duration(seconds=int(timeout), nanos=int(timeout % 1 * 1e9)))
    return spec


def described(status: status_pb2.Status) -> str:
    """The message, with the ErrorInfo reason and the failing peer when the details carry them."""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            peer = info.metadata.get("peer", "")
            return f"{status.message} [{info.reason}{', peer=' + peer if peer else ''}]"
    return str(status.message)


@dataclass
class Status:
    code: str
    message: str
    at: float


class RunWatch:
    def __init__(
        self, channel: aio.Channel, request: gateway_pb2.GatewayGenerateRequest, timeout: float
    ) -> None:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        self.call = stub.Generate(request, timeout=timeout)
        self.started = time.monotonic()
        self.run_id = request.run_id
        self.prompt_id = ""
        self.accepted = asyncio.Event()
        self.status: asyncio.Future[Status] = asyncio.get_running_loop().create_future()
        self.media_stored = 0
        self.events: list[gateway_pb2.GatewayEvent] = []
        self._task = asyncio.create_task(self._follow())

    def _settle(self, code: str, message: str) -> None:
        if not self.status.done():
            self.status.set_result(Status(code, message, time.monotonic()))

    async def _follow(self) -> None:
        try:
            async for event in self.call:
                self.events.append(event)
                kind = event.WhichOneof("event")
                if kind == "run_created":
                    self.run_id = event.run_created.run.run_id
                elif kind == "output_accepted":
                    self.prompt_id = event.output_accepted.accepted.prompt_id
                    self.accepted.set()
                elif kind == "media_stored":
                    self.media_stored += 1
                elif kind == "output_failed":
                    status = event.output_failed.status
                    self._settle(code_name(status.code), described(status))
                elif kind == "run_completed":
                    failed = event.run_completed.outputs_failed
                    self._settle("OK" if not failed else "FAILED", f"{failed} output(s) failed")
            self._settle("OK", "stream ended")
        except grpc.RpcError as err:
            self._settle(err.code().name, str(err.details()))  # type: ignore[attr-defined]
        except asyncio.CancelledError:
            self._settle("CANCELLED", "cancelled by the caller")

    async def wait_status(self, limit: float) -> Status | None:
        try:
            return await asyncio.wait_for(asyncio.shield(self.status), limit)
        except TimeoutError:
            return None

    async def close(self) -> None:
        self.call.cancel()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
