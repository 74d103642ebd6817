"""A job's events as messages, for tests that look inside them.

A job hands chunk events to the gRPC layer already serialized
(:class:`generator_service.wire.EncodedChunk`); a test reading the job directly parses
them back, so it sees exactly what a caller would receive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from generator_service.wire import EncodedChunk, OutEvent
from mediagen.v1 import generator_pb2


async def messages(events: AsyncIterator[OutEvent]) -> AsyncIterator[generator_pb2.GenerateEvent]:
    async for event in events:
        if isinstance(event, EncodedChunk):
            yield generator_pb2.GenerateEvent.FromString(event.wire)
        else:
            yield event
