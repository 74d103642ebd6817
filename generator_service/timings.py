"""How long a job's phases took: the timings in ``completed`` and the generator's job metrics.

Every job reports the same phases whatever backend ran it (queue wait, execution, transfer,
total), measured with ``time.monotonic()``, so one place turns a job's moments into both the
event and the histogram, and counts how each job ended.
"""

from __future__ import annotations

import time

from google.protobuf import duration_pb2

from mediagen.scaffold import ServiceError
from mediagen.scaffold.metrics import JOB_DURATION, JOB_OUTCOMES, STAGE_DURATION
from mediagen.v1 import common_pb2

# A job's phases under the run stage names of ``mediagen_stage_duration_seconds``.
STAGE_OF_PHASE = {"queue": "submit_to_start", "execution": "execute", "transfer": "download"}


def completed_timings(
    *,
    created: float,
    accepted: float,
    started: float | None,
    finished: float | None,
    transfer_start: float | None,
    end: float,
) -> common_pb2.Timings:
    """The phases of a finished job, each also observed in the job-duration and stage histograms.

    A moment that was never seen takes the next known one: a job never seen executing spent no
    time queued after acceptance, one whose end of execution was not seen finished when its
    transfer began, and one that sent no file transferred nothing.
    """
    transfer_start = end if transfer_start is None else transfer_start
    finished = transfer_start if finished is None else finished
    started = accepted if started is None else started
    phases = {"queue": started - accepted, "execution": finished - started, "transfer": end - transfer_start}
    for phase, seconds in phases.items():
        JOB_DURATION.labels("generator", phase).observe(max(seconds, 0.0))
        STAGE_DURATION.labels("generator", STAGE_OF_PHASE[phase]).observe(max(seconds, 0.0))
    return common_pb2.Timings(
        queue_wait=duration(phases["queue"]),
        execution=duration(phases["execution"]),
        transfer=duration(phases["transfer"]),
        total=duration(end - created),
    )


def observe_end(outcome: str, created: float) -> None:
    """Count how a job ended (``success``, ``deadline``, a failure's reason) and its whole time."""
    JOB_OUTCOMES.labels("generator", outcome).inc()
    JOB_DURATION.labels("generator", "total").observe(time.monotonic() - created)


def failed_outcome(error: ServiceError) -> str:
    """The outcome a job that ended with ``error`` is counted under: its reason, in lower case."""
    return error.reason.lower() or "error"


def duration(seconds: float) -> duration_pb2.Duration:
    """``seconds`` as a protobuf Duration; a negative reading (clock granularity) is zero."""
    value = duration_pb2.Duration()
    value.FromNanoseconds(int(max(seconds, 0.0) * 1e9))
    return value
