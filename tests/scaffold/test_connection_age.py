"""Connections are aged out, so clients of a ``dns:///`` target re-resolve and find new replicas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from grpc import aio

from mediagen.scaffold import ServerSettings, start_server
from mediagen.v1 import generator_pb2, generator_pb2_grpc
from tests.scaffold.probe_service import ProbeServicer, probe_spec


class PeerRecorder(ProbeServicer):
    """The probe, noting the client address (and so the connection) of every call."""

    def __init__(self) -> None:
        super().__init__(events=6, interval=0.25)
        self.peers: list[str] = []

    async def Generate(self, request: Any, context: Any) -> AsyncIterator[generator_pb2.GenerateEvent]:
        self.peers.append(context.peer())
        async for event in super().Generate(request, context):
            yield event


async def test_an_aged_connection_is_replaced_and_a_running_call_finishes_on_it() -> None:
    servicer = PeerRecorder()
    settings = ServerSettings(max_connection_age_seconds=0.3, max_connection_age_grace_seconds=30)
    running = await start_server(probe_spec(servicer), settings)
    try:
        async with aio.insecure_channel(running.address) as channel:
            stub = generator_pb2_grpc.GeneratorServiceStub(channel)
            # Outlives the connection's age by far: the grace period lets it finish.
            first = [event async for event in stub.Generate(generator_pb2.GenerateRequest(), timeout=10)]
            assert [event.progress.value for event in first] == [1, 2, 3, 4, 5, 6]
            second = [event async for event in stub.Generate(generator_pb2.GenerateRequest(), timeout=10)]
            assert len(second) == 6
        assert len(servicer.peers) == 2
        assert servicer.peers[0] != servicer.peers[1], "the second call should come on a new connection"
    finally:
        await running.stop(0)
