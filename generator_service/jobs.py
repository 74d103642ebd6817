"""One generation job on one backend: upload, submit, follow, download, clean up.

The job runs as its own task and hands events to the gRPC handler through a small outbox, so
its time limit (``asyncio.timeout``) and its cancellation apply to plain coroutines rather than
to a generator suspended in a gRPC write, and a slow caller still slows the download down (the
outbox fills, the producer waits). Whatever ends the job early (deadline, caller gone,
shutdown), the prompt is cancelled on ComfyUI with the targeted sequence, and its history entry is
deleted once the outputs have been streamed or given up.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import duration_pb2

from generator_service import failures, workflows
from generator_service.backends import Backend
from generator_service.cancelling import cancel_prompt, forget_prompt
from generator_service.comfy.client import BackendUnreachable, PromptRejected
from generator_service.comfy.outputs import parse_history
from generator_service.download import stream_output
from generator_service.outbox import Outbox
from generator_service.tracking import Follower, FollowLimits
from mediagen.scaffold import ServiceError
from mediagen.scaffold.logging import bind_log_ids
from mediagen.scaffold.metrics import JOB_DURATION, JOB_OUTCOMES
from mediagen.v1 import common_pb2, generator_pb2

log = logging.getLogger("generator.jobs")
_END = object()


@dataclass(frozen=True)
class JobLimits:
    follow: FollowLimits
    cancel_wait: float
    chunk_size: int
    output_prefix: str
    connect_wait: float


@dataclass(eq=False)
class Job:
    backend: Backend
    workflow: workflows.ResolvedWorkflow
    deadline: float
    """Loop time (``loop.time()``) by which the job must be over."""
    limits: JobLimits
    prompt_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    outbox: Outbox = field(default_factory=Outbox)
    created: float = field(default_factory=time.monotonic)
    submitted: bool = False
    task: asyncio.Task[None] | None = None

    @property
    def ids(self) -> dict[str, str]:
        return {"prompt_id": self.prompt_id, "backend": self.backend.name}

    def start(self) -> None:
        self.task = asyncio.create_task(self._produce(), name=f"job {self.prompt_id}")

    def cancel(self) -> None:
        """The caller left: stop the job (its task then cancels the prompt on ComfyUI)."""
        if self.task and not self.task.done():
            self.task.cancel()

    async def events(self) -> AsyncIterator[generator_pb2.GenerateEvent]:
        while True:
            item = await self.outbox.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def _produce(self) -> None:
        bind_log_ids(prompt_id=self.prompt_id)
        inbox = self.backend.events.subscribe(self.prompt_id)
        outcome, stop_later = "error", True
        try:
            async with asyncio.timeout_at(self.deadline):
                await self._run(inbox)
            outcome, stop_later = "success", False
            await self.outbox.put(_END)
        except TimeoutError:
            outcome, stop_later = "deadline", False
            await self._stop_prompt()
            await self.outbox.put(self._deadline_error())
        except asyncio.CancelledError:
            outcome, stop_later = "cancelled", False
            if self.submitted:
                await asyncio.shield(self.backend.spawn(self._clean_up(stop_first=True)))
            raise
        except ServiceError as exc:
            outcome = exc.reason.lower() or "error"
            await self.outbox.put(exc)
        except BackendUnreachable as exc:
            outcome = "unavailable"
            await self.outbox.put(failures.unavailable(str(exc), self.prompt_id, self.backend.name))
        finally:
            self.backend.events.unsubscribe(self.prompt_id)
            JOB_OUTCOMES.labels("generator", outcome).inc()
            JOB_DURATION.labels("generator", "total").observe(time.monotonic() - self.created)
            if self.submitted and outcome != "cancelled":
                self.backend.spawn(self._clean_up(stop_later))

    async def _clean_up(self, stop_first: bool) -> None:
        """Off the caller's path: make sure the prompt is over, then drop its history entry."""
        if stop_first:
            await self._stop_prompt()
        await forget_prompt(self.backend.client, self.prompt_id)

    async def _stop_prompt(self) -> None:
        if self.submitted:
            await cancel_prompt(self.backend.client, self.prompt_id, self.limits.cancel_wait)

    def _deadline_error(self) -> ServiceError:
        return ServiceError(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"job {self.prompt_id} did not finish in time; it was cancelled on the backend",
            "JOB_DEADLINE_EXCEEDED",
            self.ids,
        )

    async def _run(self, inbox: asyncio.Queue[Any]) -> None:
        client_id = await self._connected_client_id()
        for image in self.workflow.images:
            workflows.bind_upload(
                self.workflow, image, await self.backend.client.upload_image(image.filename, image.data)
            )
        workflows.apply_job_prefix(self.workflow.graph, self.limits.output_prefix, self.prompt_id)
        ahead = self.backend.events.queue_remaining
        self.submitted = True  # from here a lost answer may still have queued the prompt
        try:
            await self.backend.client.submit(self.workflow.graph, client_id, self.prompt_id)
        except PromptRejected as exc:
            self.submitted = False
            raise failures.rejected(exc.body, self.prompt_id, self.backend.name) from None
        accepted_at = time.monotonic()
        await self.outbox.put(self._accepted(await self._position() if ahead else 0))
        follower = Follower(
            self.backend.client,
            self.backend.events,
            inbox,
            self.prompt_id,
            client_id,
            self.workflow.graph,
            self.backend.name,
            self.limits.follow,
        )
        entry = await follower.follow(self._progress)
        await self._deliver(entry, follower, accepted_at)

    async def _connected_client_id(self) -> str:
        try:
            return await self.backend.events.wait_connected(self.limits.connect_wait)
        except TimeoutError:
            raise failures.unavailable(
                f"backend {self.backend.name} is not connected: {self.backend.events.last_error}",
                "",
                self.backend.name,
            ) from None

    async def _position(self) -> int:
        return (await self.backend.client.queue()).position(self.prompt_id) or 0

    async def _progress(self, progress: common_pb2.Progress) -> None:
        self.outbox.push_progress(generator_pb2.GenerateEvent(progress=progress))

    async def _deliver(self, entry: dict[str, Any], follower: Follower, accepted_at: float) -> None:
        result = parse_history(entry, self.workflow.include_previews)
        if result.status == "error":
            raise failures.execution_failed(result.error, self.prompt_id, self.backend.name)
        if result.status == "interrupted":
            raise failures.interrupted_elsewhere(result.error, self.prompt_id, self.backend.name)
        finished = follower.finished_at or time.monotonic()
        started = follower.execution_started or accepted_at
        await self._progress(
            common_pb2.Progress(
                stage=common_pb2.PROGRESS_STAGE_TRANSFERRING,
                nodes_done=len(self.workflow.graph),
                nodes_total=len(self.workflow.graph),
            )
        )
        transfer_start = time.monotonic()
        for index, file in enumerate(result.files):
            async for event in stream_output(
                self.backend.client, file, index, self.limits.chunk_size, self.ids
            ):
                await self.outbox.put(event)
        now = time.monotonic()
        timings = common_pb2.Timings(
            queue_wait=_dur(started - accepted_at),
            execution=_dur(finished - started),
            transfer=_dur(now - transfer_start),
            total=_dur(now - self.created),
        )
        for phase, seconds in (
            ("queue", started - accepted_at),
            ("execution", finished - started),
            ("transfer", now - transfer_start),
        ):
            JOB_DURATION.labels("generator", phase).observe(max(seconds, 0.0))
        await self.outbox.put(
            generator_pb2.GenerateEvent(
                completed=generator_pb2.Completed(
                    prompt_id=self.prompt_id,
                    media_count=len(result.files),
                    cached=result.cached,
                    timings=timings,
                )
            )
        )

    def _accepted(self, position: int) -> generator_pb2.GenerateEvent:
        params = {name: workflows.value_of(value) for name, value in self.workflow.values.items()}
        return generator_pb2.GenerateEvent(
            accepted=generator_pb2.Accepted(
                prompt_id=self.prompt_id,
                backend=self.backend.name,
                queue_position=position,
                seed=self.workflow.seed,
                template=self.workflow.template,
                parameters=params,
            )
        )


def _dur(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromNanoseconds(int(max(seconds, 0.0) * 1e9))
    return value
