"""HTTP/2 flow control for every mediagen server and channel: a fixed window per stream.

By default gRPC grows a connection's receive window by probing bandwidth, and a fast producer
then fills it faster than the receiver drains it: the excess is buffered in the receiver, so its
memory grows with the size and speed of a stream. A fixed window keeps the backpressure at the
producer. The window holds two default-sized messages, so a stream rarely waits for a window update
between two messages.
"""

from __future__ import annotations

from typing import Any

STREAM_WINDOW_BYTES = 2 * 1024 * 1024


def flow_control_options() -> list[tuple[str, Any]]:
    return [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", STREAM_WINDOW_BYTES)]
