"""What a job reports when it is accepted, and the end of a successful one.

At the end the outcome is read from the history entry (``status`` and the last message), which is
written before the final push, or from the entry the follower built from the pushes when they told
the whole outcome (``comfy.pushed``): one reader, one set of checks for both. An entry that names
a file outside the output folders fails the job before anything is downloaded. Files go out one after another
through the outbox, so the caller's pace sets the download's pace. ``completed`` is the last
event the caller gets; nothing else (history clean-up in particular) happens before it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import grpc

from generator_service import failures, workflows
from generator_service.comfy.client import ComfyClient
from generator_service.comfy.outputs import parse_history
from generator_service.download import short_name, stream_output
from generator_service.job_ids import JobIds
from generator_service.outbox import Outbox
from generator_service.timings import completed_timings
from mediagen.params import to_value
from mediagen.scaffold import ServiceError
from mediagen.v1 import common_pb2, generator_pb2


@dataclass(frozen=True)
class Moments:
    """``time.monotonic()`` readings of one job, for the timings in ``completed``."""

    created: float
    accepted: float
    started: float | None
    finished: float | None


async def deliver(
    client: ComfyClient,
    outbox: Outbox,
    *,
    workflow: workflows.ResolvedWorkflow,
    entry: dict[str, Any],
    moments: Moments,
    chunk_size: int,
    ids: JobIds,
) -> int:
    """Every output of the finished prompt into ``outbox``, then ``completed``; the bytes sent.
    Raises when the entry says the prompt failed or names a file it must not fetch."""
    result = parse_history(entry, workflow.include_previews)
    if result.status == "error":
        raise failures.execution_failed(result.error, ids)
    if result.status == "interrupted":
        raise failures.interrupted_elsewhere(result.error, ids)
    if result.refused:
        raise unsafe_outputs(result.refused, ids)
    nodes = len(workflow.graph)
    outbox.push_progress(
        generator_pb2.GenerateEvent(
            progress=common_pb2.Progress(
                stage=common_pb2.PROGRESS_STAGE_TRANSFERRING, nodes_done=nodes, nodes_total=nodes
            )
        )
    )
    transfer_start = time.monotonic()
    sent = 0
    for index, file in enumerate(result.files):
        async for event in stream_output(client, file, index, chunk_size, ids):
            if isinstance(event, generator_pb2.GenerateEvent):
                kind = event.WhichOneof("event")
                if kind == "media_end":
                    sent += event.media_end.size_bytes
                elif kind == "media_whole":
                    sent += len(event.media_whole.data)
            await outbox.put(event)
    timings = completed_timings(
        created=moments.created,
        accepted=moments.accepted,
        started=moments.started,
        finished=moments.finished,
        transfer_start=transfer_start,
        end=time.monotonic(),
    )
    completed = generator_pb2.Completed(
        prompt_id=ids.prompt_id, media_count=len(result.files), cached=result.cached, timings=timings
    )
    await outbox.put(generator_pb2.GenerateEvent(completed=completed))
    return sent


def unsafe_outputs(names: list[str], ids: JobIds) -> ServiceError:
    """DATA_LOSS: the history names files outside the output folders; none of the job's is sent.

    Fetching them could read anything the backend can see; leaving them out would hand the caller
    less than the job made without saying so.
    """
    first = short_name(names[0])
    return ServiceError(
        grpc.StatusCode.DATA_LOSS,
        f"the backend listed {len(names)} output file(s) outside its output folders "
        f"(first: {first!r}); nothing was fetched",
        "UNSAFE_OUTPUT_NAME",
        ids.metadata(filename=first, refused_files=str(len(names))),
    )


ECHO_MAX_BYTES = 256
"""Longer strings are not echoed in ``accepted``: the caller sent them, and echoing them could
push the event past the message limit after the job was queued."""


def accepted_event(
    workflow: workflows.ResolvedWorkflow, ids: JobIds, position: int
) -> generator_pb2.GenerateEvent:
    params = {
        name: to_value(value)
        for name, value in workflow.values.items()
        if not (isinstance(value, str) and len(value.encode()) > ECHO_MAX_BYTES)
    }
    return generator_pb2.GenerateEvent(
        accepted=generator_pb2.Accepted(
            prompt_id=ids.prompt_id,
            backend=ids.backend,
            queue_position=position,
            seed=workflow.seed,
            template=workflow.template,
            parameters=params,
        )
    )
