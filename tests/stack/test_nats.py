"""The NATS server the stack and the tests start really has JetStream, and keeps what it acked."""

from __future__ import annotations

import nats
import pytest
from nats.js.api import RetentionPolicy, StreamConfig

from mediagen.stack.nats import LocalNats, NatsEndpoint, find_nats_binary


async def test_session_server_stores_a_published_message_and_acks_it(
    nats_endpoint: NatsEndpoint, nats_names: str
) -> None:
    client = await nats.connect(nats_endpoint.url)
    try:
        js = client.jetstream()
        await js.add_stream(StreamConfig(name=nats_names, subjects=[f"{nats_names}.>"]))
        ack = await js.publish(f"{nats_names}.one", b"payload", headers={"Nats-Msg-Id": "m-1"})
        duplicate = await js.publish(f"{nats_names}.one", b"payload", headers={"Nats-Msg-Id": "m-1"})
        assert ack.stream == nats_names
        assert ack.seq == 1
        assert duplicate.duplicate
        info = await js.stream_info(nats_names)
        assert info.state.messages == 1
        stored = await js.get_msg(nats_names, seq=1)
        assert stored.data == b"payload"
        await js.delete_stream(nats_names)
    finally:
        await client.close()


async def test_fresh_server_starts_empty_and_keeps_acked_messages_across_a_restart(
    fresh_nats: LocalNats,
) -> None:
    assert fresh_nats.endpoint is not None
    client = await nats.connect(fresh_nats.endpoint.url)
    js = client.jetstream()
    assert await js.streams_info() == []
    await js.add_stream(StreamConfig(name="work", subjects=["work.>"], retention=RetentionPolicy.WORK_QUEUE))
    await js.publish("work.high", b"job")
    await client.close()

    endpoint = fresh_nats.restart()
    client = await nats.connect(endpoint.url)
    try:
        js = client.jetstream()
        pull = await js.pull_subscribe("work.high", durable="worker", stream="work")
        [message] = await pull.fetch(1, timeout=5)
        assert message.data == b"job"
        await message.ack_sync()
        assert (await js.stream_info("work")).state.messages == 0
    finally:
        await client.close()


def test_binary_comes_from_the_pinned_wheel() -> None:
    binary = find_nats_binary()
    assert binary is not None
    assert binary.name == "nats-server"


def test_a_server_that_cannot_start_reports_its_log(tmp_path, fresh_nats: LocalNats) -> None:
    assert fresh_nats.endpoint is not None
    port = int(fresh_nats.endpoint.url.rsplit(":", 1)[1])
    second = LocalNats(tmp_path / "second")
    with pytest.raises(RuntimeError, match="nats-server exited"):
        second.start(timeout=10, port=port)
