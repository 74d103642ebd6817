"""Run records in the JetStream key-value bucket: the source of truth for a run's state.

A record holds the run as submitted, its :class:`~gateway_pb2.RunStatus` (state, outcomes
of the outputs done so far, timings) and the claim: the delivery count of the queue
message the current worker holds. Every change is a compare-and-set on the key's
revision (:meth:`RunStore.change`), so two workers, or a worker and CancelRun, never
overwrite each other: the loser re-reads and re-applies its change, or learns that it
no longer holds the run (:class:`LostClaim`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import grpc
import nats.errors
from google.rpc import status_pb2  # type: ignore[import-untyped]
from nats.js import JetStreamContext, api
from nats.js import errors as js_errors
from nats.js.kv import KV_DEL, KV_OP, KV_PURGE, KeyValue

from gateway.run import summary
from gateway.runs import states
from mediagen.v1 import gateway_pb2

CANCELLED_CODE = grpc.StatusCode.CANCELLED.value[0]


class Holder(Protocol):
    def holds(self, delivery: int) -> bool: ...


class LostClaim(Exception):
    """Another worker holds the run now (this one's claim lapsed): stop working on it."""


@dataclass
class RunRecord:
    request: gateway_pb2.SubmitRunRequest
    status: gateway_pb2.RunStatus
    # Delivery count of the queue message whose holder may move the run (0: never taken).
    delivery: int = 0
    # Times the run went back to the queue because the generator had no room.
    requeues: int = 0
    # Redeliveries the executing worker took over itself (NATS lost its heartbeats).
    adoptions: int = 0
    queue_stream: str = ""
    queue_seq: int = 0

    @property
    def run_id(self) -> str:
        return self.status.run_id

    @property
    def state(self) -> int:
        return self.status.state

    def move(self, target: int) -> None:
        states.check_move(self.status.state, target)
        self.status.state = target  # type: ignore[assignment]

    def finish(self, target: int, error: status_pb2.Status | None = None) -> None:
        """Move to a final state; outputs without an outcome are CANCELLED when the run is."""
        if target == states.CANCELLED:
            done = self.done_outputs()
            for index in range(len(self.request.outputs)):
                if index not in done:
                    self.status.outputs.append(
                        gateway_pb2.OutputOutcome(
                            output_index=index,
                            state=gateway_pb2.OUTPUT_STATE_CANCELLED,
                            error=status_pb2.Status(
                                code=grpc.StatusCode.CANCELLED.value[0], message="run cancelled"
                            ),
                        )
                    )
            self.status.outputs.sort(key=lambda outcome: outcome.output_index)
        self.move(target)
        self.status.finished_at.GetCurrentTime()
        if error is not None:
            self.status.error.CopyFrom(error)
        self.status.timings.CopyFrom(completed_of(self).timings)

    def done_outputs(self) -> set[int]:
        """Outputs whose outcome is recorded: never generated again."""
        return {outcome.output_index for outcome in self.status.outputs}

    def encode(self) -> bytes:
        return json.dumps(
            {
                "request": _b64(self.request.SerializeToString(deterministic=True)),
                "status": _b64(self.status.SerializeToString(deterministic=True)),
                "delivery": self.delivery,
                "requeues": self.requeues,
                "adoptions": self.adoptions,
                "queue_stream": self.queue_stream,
                "queue_seq": self.queue_seq,
            }
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> RunRecord:
        data = json.loads(raw)
        return cls(
            request=gateway_pb2.SubmitRunRequest.FromString(base64.b64decode(data["request"])),
            status=gateway_pb2.RunStatus.FromString(base64.b64decode(data["status"])),
            delivery=int(data["delivery"]),
            requeues=int(data["requeues"]),
            adoptions=int(data.get("adoptions", 0)),
            queue_stream=str(data["queue_stream"]),
            queue_seq=int(data["queue_seq"]),
        )


def completed_of(record: RunRecord) -> gateway_pb2.RunCompleted:
    """The run_completed event of a run in a final state."""
    status = record.status
    wall = 0.0
    if status.HasField("finished_at") and status.HasField("created_at"):
        wall = (status.finished_at.ToNanoseconds() - status.created_at.ToNanoseconds()) / 1e9
    completed = summary(record.run_id, list(status.outputs), wall)
    completed.state = status.state
    return completed


def fingerprint(request: gateway_pb2.SubmitRunRequest) -> str:
    """What makes two submits "the same request" for an idempotent SubmitRun."""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


LIST_READ_SECONDS = 5.0
"""How long a listing waits for the next record before it takes what it has."""


class RunStore:
    def __init__(self, kv: KeyValue, js: JetStreamContext, bucket: str) -> None:
        self._kv = kv
        self._js = js
        self._bucket = bucket

    async def get(self, run_id: str) -> RunRecord | None:
        found = await self._get(run_id)
        return None if found is None else found[0]

    async def create(self, record: RunRecord) -> bool:
        """Store a new record; False when the run id already has one."""
        try:
            await self._kv.create(record.run_id, record.encode())
        except js_errors.KeyWrongLastSequenceError:
            return False
        return True

    async def change(
        self,
        run_id: str,
        apply: Callable[[RunRecord], bool],
        holder: Holder | None = None,
    ) -> RunRecord:
        """Apply ``apply`` to the current record and store it, retrying on concurrent writes.

        ``apply`` returns False to leave the record as it is. With ``holder`` the change is
        made only while the record's claim is one the holder holds.
        """
        while True:
            found = await self._get(run_id)
            if found is None:
                raise LostClaim(f"run {run_id} has no record")
            record, revision = found
            if holder is not None and not holder.holds(record.delivery):
                raise LostClaim(f"run {run_id} is held by delivery {record.delivery} now")
            if not apply(record):
                return record
            try:
                await self._kv.update(run_id, record.encode(), last=revision)
            except js_errors.KeyWrongLastSequenceError:
                continue
            return record

    async def all(self) -> list[RunRecord]:
        """Every record: the last value of each key, read in one pass over the bucket's stream.

        Read with an ordered consumer until a message says that none is pending after it,
        rather than with ``KeyValue.watchall``: its "initial values done" marker comes as soon
        as the consumer's info shows nothing pending, which it can before the values already
        sent have been handed over; a listing then came back empty.
        """
        stream = f"KV_{self._bucket}"  # the key-value convention: bucket B is stream KV_B
        if not (await self._js.stream_info(stream)).state.messages:
            return []
        sub = await self._js.subscribe(
            f"$KV.{self._bucket}.>",
            stream=stream,
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
        )
        records: list[RunRecord] = []
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=LIST_READ_SECONDS)
                except nats.errors.TimeoutError:
                    break  # the last records expired meanwhile: nothing more comes
                operation = (msg.headers or {}).get(KV_OP)
                if msg.data and operation not in (KV_DEL, KV_PURGE):
                    records.append(RunRecord.decode(msg.data))
                if msg.metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
        return records

    async def _get(self, run_id: str) -> tuple[RunRecord, int] | None:
        try:
            entry = await self._kv.get(run_id)
        except js_errors.NotFoundError:
            return None
        if entry.value is None or entry.revision is None:
            return None
        return RunRecord.decode(entry.value), entry.revision
