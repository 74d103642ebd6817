"""One generation job on a remote backend, with the same stream and rules as a ComfyUI job.

The job runs as its own task and hands events to the gRPC handler through the same outbox (a
slow caller slows the provider's download). It reports ``accepted`` once the provider took the
job, the provider's progress, every output as ``media_start``/``media_chunk``*/``media_end`` and
``completed`` last. Its time limit is ``asyncio.timeout_at`` on the whole run, 429 waits included;
whatever ends it early (deadline, caller gone, shutdown, a failure while following it) cancels
the job on the provider. Its life is the same :class:`~generator_service.lifecycle.JobLife` as a
ComfyUI job's: it is on the backend once the provider gave it an id to cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from generator_service import failures
from generator_service.jobs import JobCore, JobLimits
from generator_service.outbox import Ended, Failed, Last
from generator_service.providers.base import (
    MediaBegin,
    MediaBytes,
    MediaDone,
    Progressed,
    Queued,
    RemoteBackend,
    RunContext,
)
from generator_service.providers.media import MediaWriter
from generator_service.providers.templates import ProviderWorkflow
from generator_service.timings import completed_timings, failed_outcome, observe_end
from mediagen.params import to_value
from mediagen.scaffold import ServiceError
from mediagen.scaffold.logging import bind_log_ids
from mediagen.v1 import common_pb2, generator_pb2

log = logging.getLogger("mediagen.generator.providers.job")


class ProviderJob(JobCore[RemoteBackend, ProviderWorkflow]):
    """One remote job; its life is that of a ComfyUI job (see ``lifecycle``)."""

    def __init__(
        self, backend: RemoteBackend, workflow: ProviderWorkflow, *, deadline: float, limits: JobLimits
    ) -> None:
        super().__init__(backend, workflow, deadline=deadline, limits=limits)
        self.provider_id = ""
        """The provider's id of the job once it has one (what a cancel names)."""

    @property
    def job_id(self) -> str:
        return self.ids.prompt_id

    async def _produce(self) -> None:
        bind_log_ids(prompt_id=self.job_id)
        try:
            last = await self._outcome()
            await self.outbox.put(last)
            self.life.deliver()
            await self.life.released()
        except asyncio.CancelledError:
            self.life.stop()
            if self.life.backend_may_hold:
                await asyncio.shield(self.backend.spawn(self._cancel()))
            raise
        finally:
            self.life.end()

    async def _outcome(self) -> Last:
        outcome = "error"
        try:
            async with asyncio.timeout_at(self.deadline):
                await self._run()
            outcome = "success"
            return Ended()
        except TimeoutError:
            outcome = "deadline"
            if self.life.backend_may_hold:
                await self._cancel()
            return Failed(failures.deadline_exceeded(self.ids))
        except ServiceError as exc:
            outcome = failed_outcome(exc)
            # e.g. the provider became unreachable mid-job: do not leave it running
            if self.life.backend_may_hold:
                self.backend.spawn(self._cancel())
            return Failed(exc)
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception:  # a bug must still end the call, with the provider's job stopped
            log.exception("job %s failed unexpectedly", self.job_id)
            if self.life.backend_may_hold:
                await self._cancel()
            return Failed(failures.internal(self.ids))
        finally:
            observe_end(outcome, self.created)

    async def _cancel(self) -> None:
        """Cancel on the provider, bounded by the cancel wait; a failure is logged, not raised."""
        try:
            async with asyncio.timeout(self.limits.cancel_wait):
                if not await self.backend.cancel(self.provider_id):
                    log.warning("job %s: the provider did not cancel %s", self.job_id, self.provider_id)
        except (TimeoutError, ServiceError) as exc:
            log.warning("job %s: cancelling %s failed: %s", self.job_id, self.provider_id, exc)

    async def _run(self) -> None:
        writer = MediaWriter(self.limits.chunk_size)
        accepted_at = started = finished = transfer_start = None
        context = RunContext(self.job_id, self.deadline, reserve=self.backend.typical_seconds)
        run = self.backend.run(self.workflow, context)
        async with contextlib.aclosing(run):
            async for event in run:
                if isinstance(event, Queued):
                    self.provider_id = event.provider_id
                    if event.provider_id:  # else the provider cannot be asked to stop it
                        self.life.reach_backend()
                        log.info("job %s is %s on %s", self.job_id, event.provider_id, self.backend.name)
                    accepted_at = time.monotonic()
                    await self.outbox.put(self._accepted())
                elif isinstance(event, Progressed):
                    if started is None and event.progress.stage == common_pb2.PROGRESS_STAGE_EXECUTING:
                        started = time.monotonic()
                    self.outbox.push_progress(generator_pb2.GenerateEvent(progress=event.progress))
                elif isinstance(event, MediaBegin):
                    if transfer_start is None:
                        finished = transfer_start = time.monotonic()
                    await self.outbox.put(writer.begin(event))
                elif isinstance(event, MediaBytes):
                    if (chunk := writer.add(event)) is not None:
                        await self.outbox.put(chunk)
                elif isinstance(event, MediaDone):
                    for item in writer.end(event):
                        await self.outbox.put(item)
        self.backend.observe(asyncio.get_running_loop().time() - context.attempt_started)
        timings = completed_timings(
            created=self.created,
            accepted=self.created if accepted_at is None else accepted_at,
            started=started,
            finished=finished,
            transfer_start=transfer_start,
            end=time.monotonic(),
        )
        completed = generator_pb2.Completed(prompt_id=self.job_id, media_count=writer.count, timings=timings)
        await self.outbox.put(generator_pb2.GenerateEvent(completed=completed))

    def _accepted(self) -> generator_pb2.GenerateEvent:
        return generator_pb2.GenerateEvent(
            accepted=generator_pb2.Accepted(
                prompt_id=self.job_id,
                backend=self.backend.name,
                seed=self.workflow.seed,
                template=self.workflow.template.name,
                parameters={name: to_value(value) for name, value in self.workflow.values.items()},
            )
        )
