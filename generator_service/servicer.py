"""The GeneratorService RPCs: validate, pick a backend, run the job, stream its events.

``Generate`` checks the request completely before anything reaches ComfyUI (with
:func:`workflows.check_job`, the same check ``ValidateWorkflows`` offers the gateway), then
answers RESOURCE_EXHAUSTED (``BACKENDS_FULL``) or UNAVAILABLE (``NO_BACKEND``) before any event
when no backend can take the job: those reasons tell the caller nothing was queued. The job's
time limit is the smallest of the caller's timeout, the gRPC deadline (minus a small margin, so
the caller receives our DEADLINE_EXCEEDED with the prompt id rather than a bare one) and the
configured cap. When the caller goes away, the job is stopped and its prompt cancelled. A job is
forgotten only when its task has ended, clean-up included, so shutdown waits for that too.
A provider template (``gpt_image``, ``flux_schnell``...) runs the same way on a backend of its
kind, as a :class:`ProviderJob`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc import aio

from generator_service import failures, workflows
from generator_service.backends import Backend, BackendPool
from generator_service.jobs import Job, JobLimits
from generator_service.nodeinfo import NodeCatalogs
from generator_service.providers import templates as provider_templates
from generator_service.providers.base import BackendKind, JobHandle, PlacedBackend, RemoteBackend
from generator_service.providers.job import ProviderJob
from generator_service.settings import GeneratorSettings
from generator_service.templates import MEDIA_TYPES, Parameter, Template
from generator_service.wire import OutEvent
from mediagen.params import to_value
from mediagen.rules import duration_seconds
from mediagen.scaffold import ServiceError
from mediagen.scaffold.errors import MAX_DESCRIPTION_BYTES, MAX_FIELD_BYTES, MAX_VIOLATIONS, bounded
from mediagen.scaffold.logging import bind_log_ids
from mediagen.v1 import generator_pb2, generator_pb2_grpc

_TYPES = {
    "string": generator_pb2.PARAMETER_TYPE_STRING,
    "int": generator_pb2.PARAMETER_TYPE_INT,
    "float": generator_pb2.PARAMETER_TYPE_FLOAT,
    "bool": generator_pb2.PARAMETER_TYPE_BOOL,
    "image": generator_pb2.PARAMETER_TYPE_IMAGE,
}


class GeneratorServicer(generator_pb2_grpc.GeneratorServiceServicer):
    def __init__(
        self,
        settings: GeneratorSettings,
        pool: BackendPool,
        templates: dict[str, Template],
        limits: JobLimits,
        providers: dict[str, provider_templates.ProviderTemplate] | None = None,
    ) -> None:
        self._settings, self._pool, self._templates, self._limits = settings, pool, templates, limits
        self._providers = providers or {}
        self._jobs: set[JobHandle] = set()
        self._nodes = NodeCatalogs()

    async def Generate(  # type: ignore[override]  # chunk events arrive serialized (wire.encode_event)
        self, request: generator_pb2.GenerateRequest, context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[OutEvent]:
        bind_log_ids(request_id=request.request_id)
        provider = self._provider_of(request)
        if provider is not None:
            provider_workflow = provider_templates.check_job(request, provider)
            deadline = asyncio.get_running_loop().time() + self._time_limit(request, context)
            try:
                remote = await self._pool.acquire_waiting(
                    provider.kind, wait=self._place_wait(request), deadline=deadline
                )
            except ServiceError as exc:
                raise failures.refused_before_start(exc) from None
            assert isinstance(remote, RemoteBackend)
            backend: PlacedBackend = remote
            job: JobHandle = ProviderJob(remote, provider_workflow, deadline=deadline, limits=self._limits)
        else:
            workflow = workflows.check_job(request, self._templates, await self._nodes_for(request))
            deadline = asyncio.get_running_loop().time() + self._time_limit(request, context)
            try:
                placed = await self._pool.acquire_waiting(
                    BackendKind.COMFYUI, wait=self._place_wait(request), deadline=deadline
                )
            except ServiceError as exc:
                raise failures.refused_before_start(exc) from None
            assert isinstance(placed, Backend)
            backend = placed
            job = Job(placed, workflow, deadline=deadline, limits=self._limits)
        self._jobs.add(job)
        # Released once the call is over (the status is out), so clean-up never delays it.
        context.add_done_callback(lambda _ctx: job.release())  # type: ignore[arg-type]
        job.start()
        assert job.task is not None
        job.task.add_done_callback(lambda _task: self._jobs.discard(job))
        try:
            async for event in job.events():
                yield event
        except asyncio.CancelledError:
            job.release()
            raise
        finally:
            self._pool.release(backend)

    def _place_wait(self, request: generator_pb2.GenerateRequest) -> float:
        """How long the job may wait for a place: what its caller asked (the setting's default
        when it did not say), at most ``max_place_wait_seconds``."""
        asked = duration_seconds(request.place_wait) or self._settings.place_wait_seconds
        return min(asked, self._settings.max_place_wait_seconds)

    def _time_limit(
        self, request: generator_pb2.GenerateRequest, context: aio.ServicerContext[Any, Any]
    ) -> float:
        asked = duration_seconds(request.timeout) if request.HasField("timeout") else 0.0
        limit = min(asked or self._settings.default_timeout, self._settings.max_timeout)
        remaining = context.time_remaining()
        if remaining is not None:
            limit = min(limit, remaining - min(0.25, remaining * 0.05))
        return max(limit, 0.0)

    async def ValidateWorkflows(
        self, request: generator_pb2.ValidateWorkflowsRequest, context: aio.ServicerContext[Any, Any]
    ) -> generator_pb2.ValidateWorkflowsResponse:
        raw = next((job for job in request.jobs if _is_raw(job)), None)
        nodes = await self._nodes_for(raw) if raw is not None else None
        reply = generator_pb2.ValidateWorkflowsResponse()
        for index, job in enumerate(request.jobs):
            try:
                provider = self._provider_of(job)
                if provider is not None:
                    provider_templates.check_job(job, provider)
                else:
                    workflows.check_job(job, self._templates, nodes)
            except ServiceError as exc:
                if exc.code != grpc.StatusCode.INVALID_ARGUMENT:
                    raise
                for violation in exc.violations[:MAX_VIOLATIONS]:
                    reply.violations.add(
                        job_index=index,
                        field=bounded(violation.field, MAX_FIELD_BYTES),
                        description=bounded(violation.description, MAX_DESCRIPTION_BYTES),
                    )
        return reply

    async def _nodes_for(self, request: generator_pb2.GenerateRequest) -> dict[str, Any] | None:
        """A backend's node catalogue when the job is a raw graph to check against it."""
        comfy = [b for b in self._pool.backends if isinstance(b, Backend)]
        return await self._nodes.of_any(comfy) if _is_raw(request) else None

    def _provider_of(
        self, request: generator_pb2.GenerateRequest
    ) -> provider_templates.ProviderTemplate | None:
        """The provider template a job names, None for ComfyUI templates and raw graphs."""
        if request.workflow.WhichOneof("source") != "template":
            return None
        return self._providers.get(request.workflow.template)

    async def ListWorkflows(
        self, request: generator_pb2.ListWorkflowsRequest, context: aio.ServicerContext[Any, Any]
    ) -> generator_pb2.ListWorkflowsResponse:
        described = {name: _describe(t) for name, t in self._templates.items()}
        described.update({name: _describe(t, t.kind) for name, t in self._providers.items()})
        return generator_pb2.ListWorkflowsResponse(templates=[described[name] for name in sorted(described)])

    async def GetBackendStatus(
        self, request: generator_pb2.GetBackendStatusRequest, context: aio.ServicerContext[Any, Any]
    ) -> generator_pb2.GetBackendStatusResponse:
        statuses = await asyncio.gather(*(b.status() for b in self._pool.backends))
        return generator_pb2.GetBackendStatusResponse(backends=statuses)

    async def shutdown(self) -> None:
        """Stop every job still running (their prompts are cancelled on ComfyUI) or cleaning up."""
        tasks = [job.task for job in self._jobs if job.task]
        for job in list(self._jobs):
            job.release()
        if tasks:
            _, unfinished = await asyncio.wait(tasks, timeout=self._settings.cancel_wait_seconds + 1)
            for task in unfinished:  # abandoned: what they did not clean up stays journalled
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished)


def _is_raw(request: generator_pb2.GenerateRequest) -> bool:
    return request.workflow.WhichOneof("source") == "raw_graph_json"


def _describe(
    template: Template | provider_templates.ProviderTemplate, kind: BackendKind = BackendKind.COMFYUI
) -> generator_pb2.WorkflowTemplate:
    return generator_pb2.WorkflowTemplate(
        name=template.name,
        description=template.description,
        media_types=[MEDIA_TYPES[kind] for kind in template.media_types],
        parameters=[_parameter(p) for p in template.parameters.values()],
        backend_kind=kind.value,
    )


def _parameter(param: Parameter) -> generator_pb2.ParameterSpec:
    spec = generator_pb2.ParameterSpec(
        name=param.name,
        type=_TYPES[param.type],
        description=param.description,
        required=param.required,
        choices=list(param.choices),
    )
    if param.default is not None:
        spec.default_value.CopyFrom(to_value(param.default))
    if param.minimum is not None:
        spec.minimum = float(param.minimum)
    if param.maximum is not None:
        spec.maximum = float(param.maximum)
    return spec
