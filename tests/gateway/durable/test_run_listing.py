"""Listing reads every run record, each once, at its newest value; deleted ones not at all.

The listing once read the bucket with ``KeyValue.watchall`` and stopped at its "initial values
done" marker, which can come before the values already sent: on a loaded machine a listing came
back empty (``ListRuns`` showed a caller none of its runs). It now stops at the message that
says nothing is pending after it; each round here lists right after writes.
"""

from __future__ import annotations

import nats

from gateway.runs import jetstream, states
from gateway.runs.store import RunRecord, RunStore
from gateway.settings import GatewaySettings
from mediagen.stack.nats import NatsEndpoint
from mediagen.v1 import gateway_pb2


def _record(run_id: str) -> RunRecord:
    return RunRecord(
        request=gateway_pb2.SubmitRunRequest(),
        status=gateway_pb2.RunStatus(run_id=run_id, state=states.QUEUED),
    )


async def test_a_listing_holds_every_record_at_its_newest_value(
    nats_endpoint: NatsEndpoint, nats_prefix: str
) -> None:
    settings = GatewaySettings.model_validate({"nats_url": nats_endpoint.url, "nats_prefix": nats_prefix})
    nc = await nats.connect(nats_endpoint.url)
    try:
        js = nc.jetstream()
        layout = jetstream.Layout(nats_prefix)
        kv = await jetstream.ensure(js, layout, settings)
        store = RunStore(kv, js, layout.state_bucket)
        assert await store.all() == []
        written: set[str] = set()
        for round_ in range(30):
            run_id = f"run{round_:03d}"
            await kv.put(run_id, _record(run_id).encode())
            written.add(run_id)
            if round_ % 3 == 0:  # a newer value of an earlier record
                newer = _record("run000")
                newer.status.state = states.RUNNING  # type: ignore[assignment]
                await kv.put("run000", newer.encode())
            listed = await store.all()
            assert sorted(r.run_id for r in listed) == sorted(written), round_
            assert {r.run_id: r.state for r in listed}["run000"] == states.RUNNING
        await kv.delete("run001")
        assert "run001" not in {r.run_id for r in await store.all()}
    finally:
        await nc.close()
