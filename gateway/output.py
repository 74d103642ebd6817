"""One output of a run: a generator call whose media are piped into storage.

The generator's events are relayed to the caller as they come (accepted,
progress) and every media file goes into its own PutMedia call. This loop is
the only place a generator call is retried (the channel never retries it), and
only on an explicit refusal: a status whose reason says nothing was queued
(``BACKENDS_FULL``, ``NO_BACKEND``; see ``refused_before_start``), asked again
until a place is free within the caller's deadline (:class:`PlaceWait`). Each call
tells the generator how much of that wait is left (``place_wait``), so a generator whose
backends are full holds the call until a place frees rather than refusing it each second
and being asked again; a refusal then means "no room here within the wait". A bare
RESOURCE_EXHAUSTED or UNAVAILABLE may come after the job was queued (a message
over a size limit, a connection lost), so it is never retried: a job must not
run twice. Once accepted, a failure ends this output only; the
other outputs of the run go on. Idempotency keys derived from run, output and
item mean a repeated write is recognised by storage and never stored twice.
A failed output's queue and execution times are those the generator measured
before the failure, read from its error's details.

An output is an async generator of the caller's events, ending with one
:class:`OutputEnded` that carries its outcome: the caller reads at its own pace
(a slow reader slows the output) and decides where the events go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass

import grpc
from google.protobuf import duration_pb2
from google.rpc import status_pb2  # type: ignore[import-untyped]

from gateway.errors import peer_error, status_of
from gateway.peers import Peers
from gateway.settings import GatewaySettings
from gateway.transfer import OutputTransfer, Stage
from mediagen.rules import duration_seconds
from mediagen.scaffold import tracing
from mediagen.scaffold.channels import refused_before_start
from mediagen.scaffold.errors import status_details
from mediagen.scaffold.logging import log_context
from mediagen.scaffold.metrics import JOB_DURATION, JOB_OUTCOMES
from mediagen.v1 import common_pb2, gateway_pb2, generator_pb2, storage_pb2

log = logging.getLogger("mediagen.gateway.output")
State = gateway_pb2.OutputState
MAX_DURATION_SECONDS = 315_576_000_000
"""The largest valid ``google.protobuf.Duration`` (10,000 years): longer asks mean "no limit"."""


@dataclass(frozen=True, slots=True)
class OutputEnded:
    """The last item of an output's events: how the output ended."""

    outcome: gateway_pb2.OutputOutcome


OutputItem = gateway_pb2.GatewayEvent | OutputEnded
"""What an output yields: the caller's events, then exactly one :class:`OutputEnded`."""


class OutputRunner:
    def __init__(
        self,
        *,
        peers: Peers,
        settings: GatewaySettings,
        run_id: str,
        remaining: Callable[[], float | None],
        created: asyncio.Future[storage_pb2.Run],
        stored: Mapping[tuple[int, int], storage_pb2.MediaRecord] | None = None,
        start_wait: float | None = None,
    ) -> None:
        self._peers = peers
        # How long an output refused before start asks again (``GatewaySettings.start_wait``).
        self._start_wait = settings.start_wait if start_wait is None else start_wait
        # Items a previous attempt of this run already stored (a resumed durable run).
        self._stored = stored or {}
        self._settings = settings
        self._run_id = run_id
        self._remaining = remaining
        self._created = created

    async def run(self, index: int, spec: gateway_pb2.OutputSpec) -> AsyncGenerator[OutputItem, None]:
        """Generate and store one output: its events, then its :class:`OutputEnded`.

        Failures are reported (an ``output_failed`` event and the outcome), not raised.
        The output's span is current across the yields, so the caller closes it in the
        task that reads it (``contextlib.aclosing``) when it stops reading early.
        """
        started = time.monotonic()
        transfer = OutputTransfer(
            put_media=self._peers.put_media,
            settings=self._settings,
            run_id=self._run_id,
            index=index,
            created=self._created,
            stored=self._stored,
        )
        outcome = gateway_pb2.OutputOutcome(output_index=index, state=State.OUTPUT_STATE_SUCCEEDED)
        attributes: dict[str, str | int] = {"mediagen.run_id": self._run_id, "mediagen.output_index": index}
        with (
            log_context(run_id=self._run_id, output_index=str(index)),
            tracing.span("mediagen.output", attributes) as span,
        ):
            try:
                async with contextlib.aclosing(self._generate(index, spec, transfer)) as events:
                    async for event in events:
                        yield event
            except Exception as err:  # noqa: BLE001 - every failure is this output's outcome
                yield self._fail(index, err, outcome)
            finally:
                await transfer.abort()
            if span.is_recording():
                _describe(span, transfer, outcome)
        outcome.media_ids.extend(transfer.media_ids)
        outcome.timings.CopyFrom(transfer.timings(time.monotonic() - started))
        if outcome.HasField("error"):
            _measured_before_failure(outcome.error, outcome.timings)
        state = State.Name(outcome.state).removeprefix("OUTPUT_STATE_").lower()
        JOB_OUTCOMES.labels("gateway", state).inc()
        JOB_DURATION.labels("gateway", "output").observe(time.monotonic() - started)
        yield OutputEnded(outcome)

    def _fail(
        self, index: int, err: BaseException, outcome: gateway_pb2.OutputOutcome
    ) -> gateway_pb2.GatewayEvent:
        """Record the failure in ``outcome``; returns the caller's ``output_failed`` event."""
        if isinstance(err, grpc.RpcError):
            err = peer_error(err, "generator")
        status = status_of(err)
        cancelled = status.code == grpc.StatusCode.CANCELLED.value[0]
        outcome.state = State.OUTPUT_STATE_CANCELLED if cancelled else State.OUTPUT_STATE_FAILED
        outcome.error.CopyFrom(status)
        log.warning("output %d failed: %s", index, status.message)
        failed = gateway_pb2.OutputFailed(output_index=index, status=status)
        return gateway_pb2.GatewayEvent(output_failed=failed)

    async def _generate(
        self, index: int, spec: gateway_pb2.OutputSpec, transfer: OutputTransfer
    ) -> AsyncGenerator[gateway_pb2.GatewayEvent, None]:
        asked = min(duration_seconds(spec.timeout), MAX_DURATION_SECONDS)
        timeout = asked or self._settings.default_output_timeout
        request = generator_pb2.GenerateRequest(
            request_id=f"{self._run_id}.{index}",
            workflow=spec.workflow,
            timeout=duration_pb2.Duration(seconds=int(timeout), nanos=int(timeout % 1 * 1e9)),
        )
        deadline = time.monotonic() + timeout + self._settings.transfer_allowance
        waiting = PlaceWait(self._settings, min(deadline, time.monotonic() + self._start_wait))
        while True:
            # The generator holds the call while its backends are full, as long as this output
            # would go on asking: one waiting call instead of a refusal and a new call each second.
            request.place_wait.FromNanoseconds(int(max(waiting.left(), 0.001) * 1e9))
            try:
                async with contextlib.aclosing(self._attempt(request, deadline, transfer)) as events:
                    async for event in events:
                        yield event
                return
            except grpc.RpcError as err:
                if transfer.stage is not Stage.WAITING or not refused_before_start(err):
                    raise
                pause = waiting.next_pause(self._remaining())
                if pause is None:
                    raise
                log.debug("generator refused output %d (%s), asking again", index, err.code())  # type: ignore[attr-defined]
                await asyncio.sleep(pause)

    async def _attempt(
        self, request: generator_pb2.GenerateRequest, deadline: float, transfer: OutputTransfer
    ) -> AsyncGenerator[gateway_pb2.GatewayEvent, None]:
        call = self._peers.generate(request, timeout=self._call_timeout(deadline))
        try:
            async for event in call:
                relayed = await transfer.handle(event, self._call_timeout(deadline))
                if relayed is not None:
                    yield relayed
            transfer.check_complete()
        finally:
            call.cancel()

    def _call_timeout(self, deadline: float) -> float:
        own = max(deadline - time.monotonic(), 0.001)
        caller = self._remaining()
        return own if caller is None else min(own, caller)


class PlaceWait:
    """How long an output refused before start waits before asking again, and until when.

    A refusal that says nothing was queued (every backend's queue full, or none up) is
    the generator's way of saying "not now, here": it answers at once so that the caller
    may go to another replica. The caller of a run still wants its output, so the output
    asks again, with a growing pause (``retry_backoff`` doubled up to ``retry_backoff_max``,
    each drawn between half and all of it, so waiting outputs do not ask in step) until a
    place is found, ``start_wait`` has passed, the output's time limit is near, or the
    caller's deadline would pass during the pause.
    """

    def __init__(self, settings: GatewaySettings, until: float) -> None:
        self._until = until
        self._backoff = settings.retry_backoff
        self._max = settings.retry_backoff_max

    def left(self) -> float:
        """Seconds of waiting left (may be negative)."""
        return self._until - time.monotonic()

    def next_pause(self, caller_remaining: float | None) -> float | None:
        """Seconds to wait before the next attempt, or None when waiting is over."""
        pause = _JITTER.uniform(0.5, 1.0) * min(self._backoff, self._max)
        self._backoff *= 2
        left = self.left()
        if caller_remaining is not None:
            left = min(left, caller_remaining)
        return pause if pause < left else None


_JITTER = random.Random()


def _describe(span: tracing.Span, transfer: OutputTransfer, outcome: gateway_pb2.OutputOutcome) -> None:
    """What the output's span tells: where it ran, what it made, how it ended."""
    if transfer.accepted is not None:
        span.set_attribute("mediagen.backend", transfer.accepted.backend)
        span.set_attribute("mediagen.prompt_id", transfer.accepted.prompt_id)
    span.set_attribute("mediagen.bytes", transfer.bytes_stored)
    span.set_attribute("mediagen.media_count", len(transfer.media_ids))
    span.set_attribute("mediagen.output_state", State.Name(outcome.state))


def _measured_before_failure(error: status_pb2.Status, timings: common_pb2.Timings) -> None:
    """A failed job sends no ``completed``: the generator puts what it measured in its error."""
    metadata = status_details(error).metadata
    for key, target in (("queue_wait_seconds", timings.queue_wait), ("execution_seconds", timings.execution)):
        try:
            seconds = float(metadata.get(key, ""))
        except ValueError:
            continue
        target.FromNanoseconds(int(max(seconds, 0.0) * 1e9))
