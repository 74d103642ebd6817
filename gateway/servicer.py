"""``GatewayService``: runs, their media and the template catalogue.

``Generate`` validates the whole request first (:func:`gateway.validation.validate_request`,
which asks the generator about the workflows),
then records the run in storage and streams the run's events. When the
gateway chose the run id (it cannot be taken) the run is recorded while the
generator already works, so the caller does not wait for both in turn; media
still go to storage only once the run exists (see :mod:`gateway.run`). A
caller-chosen id may well be taken (a retried request), so then the run is
recorded first and nothing reaches ComfyUI for a refused run. ``GetRun`` and
``GetMedia`` pass through to storage, ``ListWorkflows`` to the generator, with
the peer's status and details handed back unchanged; ``GetRun`` adds the status
of a durable run.

``SubmitRun``, ``WatchRun``, ``CancelRun`` and ``ListRuns`` are durable runs,
handed to the run engine (:mod:`gateway.runs`) after the same validation as
``Generate``.

Every run belongs to the caller that created it; the others get NOT_FOUND for it
from every call, as for a run that does not exist (:mod:`gateway.ownership`). Each
caller's run ids are its own (:mod:`gateway.run_ids`): every call turns the ids a caller
names into stored ids, and every id it returns back.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import grpc
from grpc import aio

from gateway.errors import peer_error
from gateway.limits import RunningRuns
from gateway.ownership import media_not_found, run_not_found, run_of_media, sees
from gateway.peers import Peers
from gateway.run import run_outputs
from gateway.run_ids import RunIds
from gateway.runs.engine import RunEngine
from gateway.settings import GatewaySettings
from gateway.validation import validate_request
from gateway.workflows import WorkflowCatalog
from mediagen.rules import run_id_problem
from mediagen.scaffold.callers import current_caller
from mediagen.scaffold.errors import ServiceError, invalid_argument
from mediagen.scaffold.logging import bind_log_ids
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc, generator_pb2, storage_pb2

Context = aio.ServicerContext[Any, Any]
T = TypeVar("T")


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self, peers: Peers, settings: GatewaySettings, runs: RunEngine) -> None:
        self._peers = peers
        self._settings = settings
        self._catalog = WorkflowCatalog(peers, settings.workflows_cache_seconds)
        self._runs = runs
        self._running = RunningRuns(settings.caller_max_running)

    async def _validate(self, request: gateway_pb2.GatewayGenerateRequest, context: Context) -> None:
        """The one validation entry point of Generate and SubmitRun."""
        await validate_request(request, self._peers.generator, self._settings, context.time_remaining())

    async def Generate(
        self, request: gateway_pb2.GatewayGenerateRequest, context: Context
    ) -> AsyncIterator[gateway_pb2.GatewayEvent]:
        await self._validate(request, context)
        ids = RunIds()
        try:
            with self._running.hold(ids.caller.name):
                run_id = await self._new_run_id(ids, request.run_id, context)
                bind_log_ids(run_id=run_id)
                created = asyncio.ensure_future(self._create_run(run_id, request, context))
                if request.run_id:
                    await created
                async for event in run_outputs(
                    peers=self._peers,
                    settings=self._settings,
                    run_id=run_id,
                    request=request,
                    remaining=context.time_remaining,
                    created=created,
                ):
                    yield ids.show(event)
        except ServiceError as err:
            raise ids.error(err) from None

    async def _new_run_id(self, ids: RunIds, chosen: str, context: Context) -> str:
        """The stored id of a new run: random, or the caller's chosen id in its own space.

        A chosen id that names one of the caller's runs stored as given (an id the gateway
        chose, or a run from before ids were scoped) stays that run's id, so repeating a
        submit with the id it was given is the same run as before.
        """
        if not chosen:
            return uuid.uuid4().hex
        if await self._owner(chosen, context) == ids.caller.name:
            return chosen
        return ids.stored(chosen)

    async def _owner(self, stored: str, context: Context) -> str | None:
        """The caller a run stored under ``stored`` belongs to; None when there is no such run."""
        if self._runs.enabled:
            with contextlib.suppress(ServiceError):  # NATS away: storage still knows a started run
                status = await self._runs.status(stored)
                if status is not None:
                    return status.caller
        try:
            stored_run = await self._peers.storage.GetRun(
                storage_pb2.GetRunRequest(run_id=stored), timeout=_remaining(context, 10.0)
            )
        except grpc.RpcError as err:
            if err.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):  # type: ignore[attr-defined]
                return None
            raise peer_error(err, "storage") from None
        return stored_run.run.caller

    async def _create_run(
        self, run_id: str, request: gateway_pb2.GatewayGenerateRequest, context: Context
    ) -> storage_pb2.Run:
        try:
            return await self._peers.storage.CreateRun(
                storage_pb2.CreateRunRequest(
                    run_id=run_id, context=request.context, caller=current_caller().name
                ),
                timeout=_remaining(context, 10.0),
            )
        except grpc.RpcError as err:
            raise peer_error(err, "storage") from None

    async def GetRun(
        self, request: storage_pb2.GetRunRequest, context: Context
    ) -> gateway_pb2.GatewayGetRunResponse:
        _check_run_id(request.run_id)
        ids = RunIds()
        try:
            found = await _first(
                ids.candidates(request.run_id), lambda run_id: self._get_run(run_id, context)
            )
        except ServiceError as err:
            raise ids.error(err) from None
        return ids.show(found)

    async def _get_run(self, run_id: str, context: Context) -> gateway_pb2.GatewayGetRunResponse:
        status, engine_error = None, None
        if self._runs.enabled:
            try:
                status = await self._runs.status(run_id)
            except ServiceError as err:
                # NATS away: storage's answer still holds for a run it has, without the status.
                engine_error = err
        try:
            stored = await self._peers.storage.GetRun(
                storage_pb2.GetRunRequest(run_id=run_id), timeout=_remaining(context, 30.0)
            )
        except grpc.RpcError as err:
            if engine_error is not None and err.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                raise engine_error from None
            if status is None or err.code() != grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                raise peer_error(err, "storage") from None
            if not sees(status.caller):
                raise run_not_found(run_id) from None
            # Queued, or running but not yet recorded in storage: the engine knows it.
            run = storage_pb2.Run(
                run_id=status.run_id,
                created_at=status.created_at,
                context=status.context,
                caller=status.caller,
            )
            return gateway_pb2.GatewayGetRunResponse(run=run, status=status)
        if not sees(stored.run.caller):
            raise engine_error if engine_error is not None else run_not_found(run_id)
        return gateway_pb2.GatewayGetRunResponse(run=stored.run, media=stored.media, status=status)

    async def SubmitRun(
        self, request: gateway_pb2.SubmitRunRequest, context: Context
    ) -> gateway_pb2.RunStatus:
        await self._validate(
            gateway_pb2.GatewayGenerateRequest(
                run_id=request.run_id,
                context=request.context,
                outputs=request.outputs,
                concurrency=request.concurrency,
            ),
            context,
        )
        if request.priority not in gateway_pb2.RunPriority.values():
            raise invalid_argument("priority", "unknown priority")
        ids = RunIds()
        owned = gateway_pb2.SubmitRunRequest()
        owned.CopyFrom(request)
        owned.caller = ids.caller.name
        try:
            if request.run_id:
                owned.run_id = await self._new_run_id(ids, request.run_id, context)
            status = await self._runs.submit(owned)
        except ServiceError as err:
            raise ids.error(err) from None
        bind_log_ids(run_id=status.run_id)
        return ids.show(status)

    async def WatchRun(
        self, request: gateway_pb2.WatchRunRequest, context: Context
    ) -> AsyncIterator[gateway_pb2.RunEvent]:
        _check_run_id(request.run_id)
        bind_log_ids(run_id=request.run_id)
        ids = RunIds()

        async def opened(
            run_id: str,
        ) -> tuple[gateway_pb2.RunEvent | None, AsyncIterator[gateway_pb2.RunEvent]]:
            # The watch checks the run on its first step: a run that is not there fails it.
            events = aiter(self._runs.watch(run_id, request.after_sequence, ids.caller))
            return await anext(events, None), events

        try:
            first, events = await _first(ids.candidates(request.run_id), opened)
            if first is None:
                return
            yield ids.show(first)
            async for event in events:
                yield ids.show(event)
        except ServiceError as err:
            raise ids.error(err) from None

    async def CancelRun(
        self, request: gateway_pb2.CancelRunRequest, context: Context
    ) -> gateway_pb2.RunStatus:
        _check_run_id(request.run_id)
        bind_log_ids(run_id=request.run_id)
        ids = RunIds()
        try:
            status = await _first(
                ids.candidates(request.run_id), lambda run_id: self._runs.cancel(run_id, ids.caller)
            )
        except ServiceError as err:
            raise ids.error(err) from None
        return ids.show(status)

    async def ListRuns(
        self, request: gateway_pb2.ListRunsRequest, context: Context
    ) -> gateway_pb2.ListRunsResponse:
        if request.page_size > 500:
            raise invalid_argument("page_size", "at most 500")
        ids = RunIds()
        return ids.show(await self._runs.list(request, ids.caller))

    async def GetMedia(
        self, request: storage_pb2.GetMediaRequest, context: Context
    ) -> AsyncIterator[storage_pb2.GetMediaResponse]:
        if not request.media_id:
            raise invalid_argument("media_id", "is required")
        ids = RunIds()

        async def owned(media_id: str) -> str:
            await self._check_media_owner(media_id, context)
            return media_id

        try:
            if run_of_media(request.media_id) is None:
                media_id = request.media_id  # malformed: storage refuses it, whoever asks
            else:
                media_id = await _first(ids.candidates(request.media_id), owned)
            call = self._peers.storage.GetMedia(
                storage_pb2.GetMediaRequest(media_id=media_id), timeout=context.time_remaining()
            )
            try:
                async for part in call:
                    yield ids.show(part)
            except grpc.RpcError as err:
                raise peer_error(err, "storage") from None
            finally:
                call.cancel()
        except ServiceError as err:
            raise ids.error(err) from None

    async def _check_media_owner(self, media_id: str, context: Context) -> None:
        """NOT_FOUND, as for missing media, unless the media's run exists and the caller may see it."""
        run_id = run_of_media(media_id)
        if run_id is None:
            return  # malformed: storage refuses it with INVALID_ARGUMENT, whoever asks
        try:
            stored = await self._peers.storage.GetRun(
                storage_pb2.GetRunRequest(run_id=run_id), timeout=_remaining(context, 30.0)
            )
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                raise media_not_found(media_id) from None
            raise peer_error(err, "storage") from None
        if not sees(stored.run.caller):
            raise media_not_found(media_id)

    async def ListWorkflows(
        self, request: generator_pb2.ListWorkflowsRequest, context: Context
    ) -> generator_pb2.ListWorkflowsResponse:
        return await self._catalog.list()


async def _first(candidates: Iterable[str], find: Callable[[str], Awaitable[T]]) -> T:
    """``find`` of the first candidate id that is found; the first NOT_FOUND when none is.

    Every candidate is one the caller may name (:meth:`RunIds.candidates`), so the answer for
    a run that is someone else's is the one for a run that does not exist.
    """
    first_miss: ServiceError | None = None
    for candidate in candidates:
        try:
            return await find(candidate)
        except ServiceError as err:
            if err.code != grpc.StatusCode.NOT_FOUND:
                raise
            first_miss = first_miss or err
    assert first_miss is not None, "no candidate ids"
    raise first_miss


def _check_run_id(run_id: str) -> None:
    """A run id is also a NATS subject token and key: never a wildcard or a path."""
    if not run_id:
        raise invalid_argument("run_id", "is required")
    if problem := run_id_problem(run_id):
        raise invalid_argument("run_id", problem)


def _remaining(context: Context, cap: float) -> float:
    remaining = context.time_remaining()
    return cap if remaining is None else min(remaining, cap)
