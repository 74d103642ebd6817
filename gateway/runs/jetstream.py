"""The JetStream objects durable runs live in, their names and how they are created.

Every gateway creates them on connect if they are missing (creation is idempotent
for an unchanged configuration), so there is no separate provisioning step. Names
share a prefix (``nats_prefix``) so several deployments, or tests, can share one
NATS cluster.

* ``<P>_QUEUE_HIGH|NORMAL|LOW``: work-queue streams, one per priority. A run is published on
  its caller's subject, ``<p>.queue.<priority>.<caller token>`` (:meth:`Layout.caller_token`:
  a hash of the caller's name, since a name need not be a subject token), and every caller
  has its own durable pull consumer on its subject (``workers-<priority>-<token>``, made by
  the first worker that sees the subject), so workers can take turns between callers
  (:mod:`gateway.runs.queue`). The subject ``<p>.queue.<priority>`` itself, with the consumer
  ``workers-<priority>``, is where gateways from before per-caller subjects published; it
  is still drained. ``max_msgs`` is the queue cap with ``discard=new``: a full queue refuses the
  publish, which is SubmitRun's RESOURCE_EXHAUSTED. The message id (``Nats-Msg-Id`` = run id)
  de-duplicates a repeated submit within ``duplicate_window``.
* ``<P>_EVENTS``: the event log, subjects ``<p>.events.<run_id>``, kept ``run_retention``.
* ``<P>_STATE``: key-value bucket of run records, one key per run, kept ``run_retention``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from gateway.settings import GatewaySettings
from mediagen.nats_client import ConnectionTrouble
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

    def queue_subject(self, priority: int, caller: str | None = None) -> str:
        """The subject of ``caller``'s runs of ``priority``; without a caller, the shared one
        gateways published on before runs were queued per caller."""
        shared = f"{self.subject_root}.queue.{priority_name(priority).lower()}"
        return shared if caller is None else f"{shared}.{self.caller_token(caller)}"

    def queue_consumer(self, priority: int, token: str = "") -> str:
        """The consumer of one caller's subject (by its token), or of the shared subject."""
        base = f"workers-{priority_name(priority).lower()}"
        return f"{base}-{token}" if token else base

    def token_of_subject(self, priority: int, subject: str) -> str | None:
        """The caller token a queue subject of ``priority`` ends in; "" for the shared
        subject, None for a subject that is neither."""
        shared = self.queue_subject(priority)
        if subject == shared:
            return ""
        token = subject.removeprefix(shared + ".")
        return token if token != subject and "." not in token else None

    @staticmethod
    def caller_token(caller: str) -> str:
        """A subject token and consumer-name part for a caller name (names may hold spaces, dots
        and '@', which subjects and consumer names may not)."""
        return hashlib.sha256(caller.encode()).hexdigest()[:16]

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


async def connect(settings: GatewaySettings, trouble: ConnectionTrouble) -> Client:
    """A connection that reconnects forever; a publish while disconnected fails rather than buffers.

    It returns only once connected; meanwhile ``trouble`` holds the last error."""
    client = await nats.connect(
        servers=[url.strip() for url in settings.nats_url.split(",") if url.strip()],
        name="mediagen-gateway",
        connect_timeout=2,
        reconnect_time_wait=1,
        max_reconnect_attempts=-1,
        allow_reconnect=True,
        pending_size=0,
        tls=settings.nats_tls(),
        error_cb=trouble.note,
        reconnected_cb=trouble.connected,
    )
    await trouble.connected()
    return client


async def ensure(js: JetStreamContext, layout: Layout, settings: GatewaySettings) -> KeyValue:
    """Create the streams, consumers and bucket if missing; return the state bucket."""
    for priority in PRIORITIES:
        stream = layout.queue_stream(priority)
        await _add_or_update(
            js,
            api.StreamConfig(
                name=stream,
                subjects=[layout.queue_subject(priority), f"{layout.queue_subject(priority)}.*"],
                retention=api.RetentionPolicy.WORK_QUEUE,
                max_msgs=settings.queue_cap,
                discard=api.DiscardPolicy.NEW,
                duplicate_window=DUPLICATE_WINDOW,
                num_replicas=settings.nats_replicas,
                storage=api.StorageType.FILE,
            ),
        )
        await ensure_consumer(js, layout, settings, priority, "")
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


async def ensure_consumer(
    js: JetStreamContext, layout: Layout, settings: GatewaySettings, priority: int, token: str
) -> None:
    """The durable consumer of one caller's queue subject (``token``), or of the shared one ("").

    A caller's consumer is removed by NATS once unused for ``caller_queue_idle_seconds``: one
    per caller and priority, kept for ever, would pile up with every caller a platform ever had.
    The workers ask it while its caller has runs waiting, which keeps it; a worker that finds it
    gone makes it again (:meth:`gateway.runs.worker.Worker._ask`). The shared one stays.
    """
    subject = layout.queue_subject(priority)
    await js.add_consumer(
        layout.queue_stream(priority),
        api.ConsumerConfig(
            durable_name=layout.queue_consumer(priority, token),
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=settings.claim_seconds,
            # Deliveries are bounded by the worker (max_worker_deaths), which can tell a
            # death from a requeue and records why it gave up; the server never drops one.
            max_deliver=-1,
            filter_subject=f"{subject}.{token}" if token else subject,
            num_replicas=settings.nats_replicas,
            inactive_threshold=settings.caller_queue_idle_seconds if token else None,
        ),
    )


async def _add_or_update(js: JetStreamContext, config: api.StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError:
        # It exists with another configuration (a changed cap or retention): apply ours.
        await js.update_stream(config)
