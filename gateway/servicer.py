"""``GatewayService``: runs, their media and the template catalogue.

``Generate`` validates the whole request first (see :mod:`gateway.validation`),
then records the run in storage and streams the run's events. When the
gateway chose the run id (it cannot be taken) the run is recorded while the
generator already works, so the caller does not wait for both in turn; media
still go to storage only once the run exists (see :mod:`gateway.run`). A
caller-chosen id may well be taken (a retried request), so then the run is
recorded first and nothing reaches ComfyUI for a refused run. ``GetRun`` and
``GetMedia`` pass through to storage, ``ListWorkflows`` to the generator, with
the peer's status and details handed back unchanged.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc import aio

from gateway.errors import peer_error
from gateway.peers import Peers
from gateway.run import run_outputs
from gateway.settings import GatewaySettings
from gateway.validation import check_request
from gateway.workflows import WorkflowCatalog
from mediagen.scaffold.errors import invalid_argument
from mediagen.scaffold.logging import bind_log_ids
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc, generator_pb2, storage_pb2

Context = aio.ServicerContext[Any, Any]


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self, peers: Peers, settings: GatewaySettings) -> None:
        self._peers = peers
        self._settings = settings
        self._catalog = WorkflowCatalog(peers, settings.workflows_cache_seconds)

    async def Generate(
        self, request: gateway_pb2.GatewayGenerateRequest, context: Context
    ) -> AsyncIterator[gateway_pb2.GatewayEvent]:
        templates = await self._catalog.templates() if _uses_templates(request) else {}
        check_request(request, templates)
        run_id = request.run_id or uuid.uuid4().hex
        bind_log_ids(run_id=run_id)
        created = asyncio.ensure_future(self._create_run(run_id, request, context))
        if request.run_id:
            await created
        async for event in run_outputs(
            self._peers, self._settings, run_id, request, context.time_remaining, created
        ):
            yield event

    async def _create_run(
        self, run_id: str, request: gateway_pb2.GatewayGenerateRequest, context: Context
    ) -> storage_pb2.Run:
        try:
            return await self._peers.storage.CreateRun(
                storage_pb2.CreateRunRequest(run_id=run_id, context=request.context),
                timeout=_remaining(context, 10.0),
            )
        except grpc.RpcError as err:
            raise peer_error(err, "storage") from None

    async def GetRun(
        self, request: storage_pb2.GetRunRequest, context: Context
    ) -> gateway_pb2.GatewayGetRunResponse:
        if not request.run_id:
            raise invalid_argument("run_id", "is required")
        try:
            stored = await self._peers.storage.GetRun(request, timeout=_remaining(context, 30.0))
        except grpc.RpcError as err:
            raise peer_error(err, "storage") from None
        return gateway_pb2.GatewayGetRunResponse(run=stored.run, media=stored.media)

    async def GetMedia(
        self, request: storage_pb2.GetMediaRequest, context: Context
    ) -> AsyncIterator[storage_pb2.GetMediaResponse]:
        if not request.media_id:
            raise invalid_argument("media_id", "is required")
        call = self._peers.storage.GetMedia(request, timeout=context.time_remaining())
        try:
            async for part in call:
                yield part
        except grpc.RpcError as err:
            raise peer_error(err, "storage") from None
        finally:
            call.cancel()

    async def ListWorkflows(
        self, request: generator_pb2.ListWorkflowsRequest, context: Context
    ) -> generator_pb2.ListWorkflowsResponse:
        return await self._catalog.list()


def _uses_templates(request: gateway_pb2.GatewayGenerateRequest) -> bool:
    return any(output.workflow.WhichOneof("source") == "template" for output in request.outputs)


def _remaining(context: Context, cap: float) -> float:
    remaining = context.time_remaining()
    return cap if remaining is None else min(remaining, cap)
