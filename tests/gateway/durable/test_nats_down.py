"""NATS away: SubmitRun answers UNAVAILABLE, a running run goes on storing and reports once NATS is back."""

from __future__ import annotations

import grpc
import pytest

from comfyui_sim import SimulatorHandle
from mediagen.scaffold import RunningServer
from mediagen.stack.nats import LocalNats
from mediagen.v1 import gateway_pb2, storage_pb2
from tests.gateway.conftest import stop_gateway
from tests.gateway.durable.conftest import start_run_gateway
from tests.gateway.durable.support import eventually, stored_id, submit_request, wait_state, watch
from tests.gateway.runs import output
from tests.storage.conftest import StorageServer


async def test_submit_is_unavailable_while_nats_is_down_and_a_running_run_reports_once_it_is_back(
    generator: RunningServer,
    storage: StorageServer,
    fresh_nats: LocalNats,
    nats_prefix: str,
    sim: SimulatorHandle,
) -> None:
    sim.faults.node_delay_s = {"EmptyImage": 1.0}
    assert fresh_nats.endpoint is not None
    port = int(fresh_nats.endpoint.url.rsplit(":", 1)[1])
    gateway = await start_run_gateway(generator, storage, fresh_nats.endpoint, nats_prefix)
    try:
        outputs = [output("solid_image", width=8, height=8, color=0x300000 + index) for index in range(3)]
        status = await gateway.stub.SubmitRun(submit_request(*outputs, run_id="outage"))
        await wait_state(gateway.stub, "outage", gateway_pb2.RUN_STATE_RUNNING)
        fresh_nats.stop()
        with pytest.raises(grpc.RpcError) as refused:
            await gateway.stub.SubmitRun(submit_request(output("solid_image", width=8, height=8)))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        # The run goes on storing media while NATS is away.
        stored = storage_pb2.ListRunMediaRequest(run_id=stored_id("outage"))

        async def media_count() -> int:
            return len((await storage.stub.ListRunMedia(stored)).media)

        count = 0
        while count < 3:
            count = await media_count()
            await eventually(lambda: True, within=0.5)
        fresh_nats.start(port=port)
        reply = await wait_state(gateway.stub, status.run_id, gateway_pb2.RUN_STATE_SUCCEEDED, within=60)
        events = await watch(gateway.stub, status.run_id)
    finally:
        await stop_gateway(gateway)
    assert sorted((r.output_index, r.item_index) for r in reply.media) == [(0, 0), (1, 0), (2, 0)]
    assert events[-1].run_completed.state == gateway_pb2.RUN_STATE_SUCCEEDED
    logged = [e.media_stored.output_index for e in events if e.WhichOneof("event") == "media_stored"]
    assert logged == [0, 1, 2]
