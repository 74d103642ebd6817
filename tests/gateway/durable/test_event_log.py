"""The event log keeps every media event and only a few progress reports per output."""

from __future__ import annotations

import nats

from gateway.runs import jetstream
from gateway.runs.events import EventLog, Outbox, stamped
from gateway.settings import GatewaySettings
from mediagen.stack.nats import NatsEndpoint
from mediagen.v1 import common_pb2, gateway_pb2, storage_pb2


async def test_progress_is_thinned_and_media_events_are_all_kept(
    nats_endpoint: NatsEndpoint, nats_prefix: str
) -> None:
    settings = GatewaySettings.model_validate({"nats_url": nats_endpoint.url, "nats_prefix": nats_prefix})
    nc = await nats.connect(nats_endpoint.url)
    try:
        js = nc.jetstream()
        layout = jetstream.Layout(nats_prefix)
        await jetstream.ensure(js, layout, settings)
        log = EventLog(js, layout)
        outbox = Outbox(log, "thin")
        executing = common_pb2.Progress(stage=common_pb2.PROGRESS_STAGE_EXECUTING)
        for step in range(200):
            executing.value = step
            progress = gateway_pb2.OutputProgress(output_index=0, progress=executing)
            outbox.put(stamped("thin", output_progress=progress))
            if step % 50 == 0:
                record = storage_pb2.MediaRecord(media_id=f"thin.0.{step}")
                outbox.put(
                    stamped("thin", media_stored=gateway_pb2.MediaStored(output_index=0, record=record))
                )
        await outbox.flush()
        await outbox.close()
        info = await js.stream_info(layout.events_stream, subjects_filter=layout.events_subject("thin"))
        logged = info.state.messages
        last = await log.last("thin")
    finally:
        await nc.close()
    assert last is not None
    assert last.media_stored.record.media_id == "thin.0.150"
    # The four media events and at most two of the 200 progress reports: nothing is published
    # while the loop runs, so later reports replace the one waiting or are thinned away.
    assert 5 <= logged <= 6
