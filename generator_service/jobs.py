"""One generation job on one backend: upload, submit, follow, deliver, clean up.

The job runs as its own task and hands events to the gRPC handler through a small outbox, so
its time limit (``asyncio.timeout``) and its cancellation apply to plain coroutines rather than
to a generator suspended in a gRPC write, and a slow caller still slows the download down (the
outbox fills, the producer waits). Whatever ends the job early (deadline, caller gone,
shutdown), the prompt is cancelled on ComfyUI with the targeted sequence. The caller is not kept
waiting for it: a node may ignore interrupts until it ends, so a deadline is answered at once and
the cancel goes on in the job's task (bounded by ``cancel_wait``; the servicer waits for it at
shutdown, and what is left unconfirmed stays journalled for recovery). A failed job's error
carries the queue and execution time measured before it (``queue_wait_seconds``,
``execution_seconds``), since it has no ``completed`` to carry its timings.

The prompt is journalled before it is posted. Its history entry is deleted only once the caller
has been released (it has the last event, or it left), so the clean-up never delays
``completed``; the job's task ends after it, and the journal entry goes with a clean-up that
worked (otherwise it stays for recovery). On a managed backend the job's files (outputs, uploads,
not previews) are deleted once the prompt is over (see ``job_files``).

Where the job stands is its :class:`~generator_service.lifecycle.JobLife` (running, on the
backend from the journal entry on, delivered, cleaning up, ended); the clean-up reads from it
whether there is a prompt to stop and forget.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from generator_service import failures, workflows
from generator_service.backends import Backend
from generator_service.cancelling import cancel_prompt, forget_prompt
from generator_service.comfy.client import BackendUnreachable, PromptRejected
from generator_service.comfy.outputs import parse_history
from generator_service.delivery import Moments, accepted_event, deliver
from generator_service.job_files import upload_name
from generator_service.job_ids import JobIds
from generator_service.lifecycle import JobLife, JobState
from generator_service.outbox import Ended, Failed, Last, Outbox
from generator_service.providers.base import PlacedBackend
from generator_service.timings import failed_outcome, observe_end
from generator_service.tracking import Finished, Follower, FollowLimits
from generator_service.wire import OutEvent
from mediagen.scaffold import ServiceError, tracing
from mediagen.scaffold.logging import bind_log_ids
from mediagen.scaffold.metrics import STAGE_DURATION
from mediagen.v1 import generator_pb2

log = logging.getLogger("mediagen.generator.jobs")


@dataclass(frozen=True, kw_only=True)
class JobLimits:
    follow: FollowLimits
    cancel_wait: float
    chunk_size: int
    output_prefix: str
    connect_wait: float


B = TypeVar("B", bound=PlacedBackend)
W = TypeVar("W")


class JobCore(Generic[B, W]):
    """What every job kind shares: its ids, its life (see ``lifecycle``), its outbox, its task.

    A kind supplies :meth:`_produce`, the task that runs the job on its backend, puts the
    events and one last item into :attr:`outbox`, and ends the job's life.
    """

    def __init__(self, backend: B, workflow: W, *, deadline: float, limits: JobLimits) -> None:
        self.backend, self.workflow, self.limits = backend, workflow, limits
        self.deadline = deadline
        """Loop time (``loop.time()``) by which the job must be over."""
        self.ids = JobIds(str(uuid.uuid4()), backend.name)
        self.life = JobLife()
        self.outbox = Outbox(progress_interval=limits.follow.progress_interval)
        self.created = time.monotonic()
        self.task: asyncio.Task[None] | None = None

    @property
    def state(self) -> JobState:
        return self.life.state

    def start(self) -> None:
        self.life.start()
        self.task = asyncio.create_task(self._produce(), name=f"job {self.ids.prompt_id}")

    def release(self) -> None:
        """The caller is done: stop the job if it is still producing, else let it clean up."""
        if self.life.release() and self.task is not None:
            self.task.cancel()  # the task then stops the job on its backend

    def events(self) -> AsyncIterator[OutEvent]:
        return self.outbox.events()

    async def _produce(self) -> None:
        raise NotImplementedError


class Job(JobCore[Backend, workflows.ResolvedWorkflow]):
    """One ComfyUI job."""

    def __init__(
        self, backend: Backend, workflow: workflows.ResolvedWorkflow, *, deadline: float, limits: JobLimits
    ) -> None:
        super().__init__(backend, workflow, deadline=deadline, limits=limits)
        self.accepted_at: float | None = None
        """``time.monotonic()`` when ComfyUI took the prompt."""
        self.follower: Follower | None = None
        self.outputs_listed = 0

    @property
    def prompt_id(self) -> str:
        return self.ids.prompt_id

    async def _produce(self) -> None:
        bind_log_ids(prompt_id=self.prompt_id)
        try:
            try:
                last, stop = await self._outcome()
                await self.outbox.put(last)
                self.life.deliver()
                await self.life.released()
            except asyncio.CancelledError:
                self.life.stop()
                await asyncio.shield(self.backend.spawn(self._clean_up(stop_first=True)))
                raise
            await self._clean_up(stop)
        finally:
            self.life.end()

    async def _outcome(self) -> tuple[Last, bool]:
        """Run the job: the last item for the caller, and whether the prompt may need stopping."""
        inbox = self.backend.events.subscribe(self.prompt_id)
        outcome = "error"
        try:
            async with asyncio.timeout_at(self.deadline):
                await self._run(inbox)
            outcome = "success"
            return Ended(), False
        except TimeoutError:  # answered now; the prompt is stopped in the clean-up, after it
            outcome = "deadline"
            return Failed(self._measured(failures.deadline_exceeded(self.ids))), True
        except ServiceError as exc:
            outcome = failed_outcome(exc)
            return Failed(self._measured(exc)), True
        except BackendUnreachable as exc:
            outcome = "unavailable"
            return Failed(self._measured(failures.unavailable(str(exc), self.ids))), True
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception:  # a bug must still end the call, with the prompt stopped
            log.exception("job %s failed unexpectedly", self.prompt_id)
            return Failed(failures.internal(self.ids)), True
        finally:
            self.backend.events.unsubscribe(self.prompt_id)
            observe_end(outcome, self.created)

    def _measured(self, error: ServiceError) -> ServiceError:
        """The error with the queue and execution time measured so far (once ComfyUI took the job)."""
        if self.accepted_at is None:
            return error
        now = time.monotonic()
        started = self.follower.execution_started if self.follower else None
        ended = (self.follower.finished_at if self.follower else None) or now
        timings = {
            "queue_wait_seconds": f"{max((started or ended) - self.accepted_at, 0.0):.3f}",
            "execution_seconds": f"{max(ended - started, 0.0) if started else 0.0:.3f}",
        }
        return dataclasses.replace(error, metadata={**error.metadata, **timings})

    async def _clean_up(self, stop_first: bool) -> None:
        """Make sure the prompt is over, then drop its files, its history entry and its journal entry."""
        if not self.life.backend_may_hold:
            await self._remove_files()  # uploads of a job that never reached the queue
            return
        try:
            if stop_first and not await cancel_prompt(
                self.backend.client, self.prompt_id, self.limits.cancel_wait
            ):
                return
            await self._remove_files()
            if await forget_prompt(self.backend.client, self.prompt_id):
                await self.backend.journal.remove(self.prompt_id)
        finally:
            self.backend.journal.settle(self.prompt_id)

    async def _remove_files(self) -> None:
        if self.backend.files is not None:
            await self.backend.files.remove(self.prompt_id, self.outputs_listed)

    async def _run(self, inbox: asyncio.Queue[Any]) -> None:
        client_id = await self._connected_client_id()
        traced = {"mediagen.prompt_id": self.prompt_id, "mediagen.backend": self.backend.name}
        if self.workflow.images:
            began = time.monotonic()
            sizes = sum(len(image.data) for image in self.workflow.images)
            with tracing.span("comfyui.upload", {**traced, "mediagen.bytes": sizes}):
                for image in self.workflow.images:
                    name = upload_name(self.prompt_id, image.filename)
                    comfy_name = await self.backend.client.upload_image(
                        name, image.data, self.limits.output_prefix
                    )
                    workflows.bind_upload(self.workflow, image, comfy_name)
            STAGE_DURATION.labels("generator", "upload").observe(time.monotonic() - began)
        workflows.apply_job_prefix(self.workflow.graph, self.limits.output_prefix, self.prompt_id)
        ahead = self.backend.events.queue_remaining
        await self.backend.journal.record(self.backend.identity, self.prompt_id)
        self.life.reach_backend()  # from here a lost answer may still have queued the prompt
        try:
            with tracing.span("comfyui.submit", traced):
                await self.backend.client.submit(self.workflow.graph, client_id, self.prompt_id)
        except PromptRejected as exc:
            if not exc.queued:  # else the valid part runs: it is stopped and forgotten like any job
                self.life.refused()
                await self.backend.journal.remove(self.prompt_id)
            raise failures.rejected(exc.body, self.ids) from None
        with self.backend.queued_by_us():
            accepted_at = self.accepted_at = time.monotonic()
            # Every prompt the backend held at its last status push is ahead of ours (ComfyUI
            # runs its queue in order): its count is the position, without a GET /queue.
            position = ahead
            await self.outbox.put(accepted_event(self.workflow, self.ids, position))
            follower = self.follower = Follower(
                client=self.backend.client,
                stream=self.backend.events,
                inbox=inbox,
                ids=self.ids,
                client_id=client_id,
                graph=self.workflow.graph,
                limits=self.limits.follow,
                include_previews=self.workflow.include_previews,
                accepted_position=position,
            )
            # The WebSocket wait: queued behind other prompts, then executing.
            with tracing.span("comfyui.wait", traced):
                entry = await self._followed(follower)
        self.outputs_listed = len(parse_history(entry, include_previews=False).files)
        moments = Moments(self.created, accepted_at, follower.execution_started, follower.finished_at)
        listed: dict[str, str | int] = {**traced, "mediagen.media_count": self.outputs_listed}
        with tracing.span("comfyui.download", listed) as span:
            sent = await deliver(
                self.backend.client,
                self.outbox,
                workflow=self.workflow,
                entry=entry,
                moments=moments,
                chunk_size=self.limits.chunk_size,
                ids=self.ids,
            )
            span.set_attribute("mediagen.bytes", sent)

    async def _followed(self, follower: Follower) -> dict[str, Any]:
        """The prompt's history entry (or its pushes' equivalent) once it is over; its progress
        goes to the caller meanwhile."""
        async with contextlib.aclosing(follower.follow()) as steps:
            async for step in steps:
                if isinstance(step, Finished):
                    return step.entry
                self.outbox.push_progress(generator_pb2.GenerateEvent(progress=step))
        raise AssertionError("a follower always ends with the history entry or an error")

    async def _connected_client_id(self) -> str:
        """The live socket's clientId, waiting a little for one that is reconnecting."""
        try:
            return await self.backend.events.wait_connected(self.limits.connect_wait)
        except TimeoutError:
            raise failures.unavailable_before_accept(
                f"backend {self.backend.name}: no event socket within {self.limits.connect_wait:g}s "
                f"(last error: {self.backend.events.last_error or 'none'})",
                self.backend.name,
            ) from None
