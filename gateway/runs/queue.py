"""The work queue: one JetStream work-queue stream per priority.

A submitted run is one message (the SubmitRunRequest, run id filled in) on its priority's
subject; it stays in the stream until the worker that finishes the run acknowledges it.
Workers fetch from the highest priority that has a message, so priorities are strict and
each priority is first in, first out.
"""

from __future__ import annotations

import contextlib
import json

import grpc
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js import errors as js_errors

from gateway.runs.jetstream import PRIORITIES, Layout, priority_name
from gateway.settings import GatewaySettings
from mediagen.scaffold import tracing
from mediagen.scaffold.errors import ServiceError

# JetStream's error code for a publish refused by a stream's max_msgs with discard=new.
MAX_MESSAGES_EXCEEDED = 10077


class RunQueue:
    def __init__(self, nc: Client, js: JetStreamContext, layout: Layout, settings: GatewaySettings) -> None:
        self._nc = nc
        self._js = js
        self._layout = layout
        self._settings = settings

    async def enqueue(self, run_id: str, priority: int, payload: bytes) -> tuple[str, int, bool]:
        """Store the run in the queue; (stream, sequence, was it a duplicate). Raises ServiceError."""
        stream = self._layout.queue_stream(priority)
        try:
            ack = await self._js.publish(
                self._layout.queue_subject(priority),
                payload,
                stream=stream,
                headers=_headers(run_id),
                timeout=5.0,
            )
        except js_errors.APIError as err:
            if err.err_code == MAX_MESSAGES_EXCEEDED:
                cap = self._settings.queue_cap
                raise ServiceError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"the {priority_name(priority).lower()} priority queue is full ({cap} runs)",
                    "RUN_QUEUE_FULL",
                    {"queue_cap": str(cap), "priority": priority_name(priority)},
                ) from None
            raise
        return stream, int(ack.seq), bool(ack.duplicate)

    async def remove(self, stream: str, seq: int) -> None:
        """Drop a cancelled run's message so it no longer takes a place in the queue."""
        # NOT_FOUND: a worker took it already, and will see that the run is cancelled.
        with contextlib.suppress(js_errors.NotFoundError):
            await self._js.delete_msg(stream, seq)

    async def position(self, priority: int, seq: int) -> int:
        """Runs a worker takes before the message ``seq`` of ``priority``'s stream.

        Every undelivered message of a higher priority, plus the undelivered messages of the
        same priority before it (those between the consumer's last delivery and it, less
        the ones deleted by cancellation).
        """
        ahead = 0
        for other in PRIORITIES:
            consumer = await self._js.consumer_info(
                self._layout.queue_stream(other), self._layout.queue_consumer(other)
            )
            if other == priority:
                delivered = consumer.delivered.stream_seq if consumer.delivered else 0
                delivered = delivered or 0
                before = max(seq - delivered - 1, 0)
                if before:
                    before -= await self._deleted_between(self._layout.queue_stream(other), delivered, seq)
                return ahead + max(before, 0)
            ahead += consumer.num_pending or 0
        return ahead

    async def _deleted_between(self, stream: str, low: int, high: int) -> int:
        reply = await self._nc.request(
            f"$JS.API.STREAM.INFO.{stream}", json.dumps({"deleted_details": True}).encode(), timeout=5.0
        )
        deleted = json.loads(reply.data).get("state", {}).get("deleted") or []
        return sum(1 for seq in deleted if low < seq < high)


def _headers(run_id: str) -> dict[str, str]:
    """The message id, and the submitter's trace context so the worker's spans join its trace."""
    headers = {"Nats-Msg-Id": run_id}
    tracing.inject(headers)
    return headers
