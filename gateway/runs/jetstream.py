"""The JetStream objects durable runs live in, their names and how they are created.

Every gateway creates them on connect if they are missing (creation is idempotent
for an unchanged configuration), so there is no separate provisioning step. Names
share a prefix (``nats_prefix``) so several deployments, or tests, can share one
NATS cluster.

* ``<P>_QUEUE_HIGH|NORMAL|LOW``: work-queue streams on ``<p>.queue.<priority>``, one durable pull
  consumer each. ``max_msgs`` is the queue cap with ``discard=new``: a full queue refuses the
  publish, which is SubmitRun's RESOURCE_EXHAUSTED. The message id (``Nats-Msg-Id`` = run id)
  de-duplicates a repeated submit within ``duplicate_window``.
* ``<P>_EVENTS``: the event log, subjects ``<p>.events.<run_id>``, kept ``run_retention``.
* ``<P>_STATE``: key-value bucket of run records, one key per run, kept ``run_retention``.
"""

from __future__ import annotations

from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from gateway.settings import GatewaySettings
from mediagen.v1 import gateway_pb2

PRIORITIES = (gateway_pb2.RUN_PRIORITY_HIGH, gateway_pb2.RUN_PRIORITY_NORMAL, gateway_pb2.RUN_PRIORITY_LOW)
DUPLICATE_WINDOW = 120.0


def priority_of(value: int) -> int:
    return value if value in PRIORITIES else gateway_pb2.RUN_PRIORITY_NORMAL


def priority_name(priority: int) -> str:
    return gateway_pb2.RunPriority.Name(priority).removeprefix("RUN_PRIORITY_")  # type: ignore[arg-type]


@dataclass(frozen=True)
class Layout:
    prefix: str

    @property
    def subject_root(self) -> str:
        return self.prefix.lower()

    def queue_stream(self, priority: int) -> str:
        return f"{self.prefix}_QUEUE_{priority_name(priority)}"

    def queue_subject(self, priority: int) -> str:
        return f"{self.subject_root}.queue.{priority_name(priority).lower()}"

    def queue_consumer(self, priority: int) -> str:
        return f"workers-{priority_name(priority).lower()}"

    @property
    def events_stream(self) -> str:
        return f"{self.prefix}_EVENTS"

    def events_subject(self, run_id: str) -> str:
        return f"{self.subject_root}.events.{run_id}"

    @property
    def state_bucket(self) -> str:
        return f"{self.prefix}_STATE"

    @property
    def cancel_subject(self) -> str:
        """Core NATS (not stored): tells every worker at once that a run was cancelled."""
        return f"{self.subject_root}.cancel"


async def connect(settings: GatewaySettings) -> Client:
    """A connection that reconnects forever; a publish while disconnected fails rather than buffers."""
    return await nats.connect(
        servers=[url.strip() for url in settings.nats_url.split(",") if url.strip()],
        name="mediagen-gateway",
        connect_timeout=2,
        reconnect_time_wait=1,
        max_reconnect_attempts=-1,
        allow_reconnect=True,
        pending_size=0,
    )


async def ensure(js: JetStreamContext, layout: Layout, settings: GatewaySettings) -> KeyValue:
    """Create the streams, consumers and bucket if missing; return the state bucket."""
    for priority in PRIORITIES:
        stream = layout.queue_stream(priority)
        await _add_or_update(
            js,
            api.StreamConfig(
                name=stream,
                subjects=[layout.queue_subject(priority)],
                retention=api.RetentionPolicy.WORK_QUEUE,
                max_msgs=settings.queue_cap,
                discard=api.DiscardPolicy.NEW,
                duplicate_window=DUPLICATE_WINDOW,
                num_replicas=settings.nats_replicas,
                storage=api.StorageType.FILE,
            ),
        )
        await js.add_consumer(
            stream,
            api.ConsumerConfig(
                durable_name=layout.queue_consumer(priority),
                ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=settings.claim_seconds,
                # Deliveries are bounded by the worker (max_worker_deaths), which can tell a
                # death from a requeue and records why it gave up; the server never drops one.
                max_deliver=-1,
                filter_subject=layout.queue_subject(priority),
                num_replicas=settings.nats_replicas,
            ),
        )
    await _add_or_update(
        js,
        api.StreamConfig(
            name=layout.events_stream,
            subjects=[f"{layout.subject_root}.events.*"],
            retention=api.RetentionPolicy.LIMITS,
            max_age=settings.run_retention,
            num_replicas=settings.nats_replicas,
            storage=api.StorageType.FILE,
        ),
    )
    return await js.create_key_value(
        api.KeyValueConfig(
            bucket=layout.state_bucket,
            history=1,
            ttl=settings.run_retention,
            replicas=settings.nats_replicas,
            storage=api.StorageType.FILE,
        )
    )


async def _add_or_update(js: JetStreamContext, config: api.StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError:
        # It exists with another configuration (a changed cap or retention): apply ours.
        await js.update_stream(config)
