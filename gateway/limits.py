"""Per-caller limits: how many runs one caller may have going, so one cannot crowd out the rest.

``caller_max_running`` caps the ``Generate`` runs one caller has streaming at once through
this gateway process (each replica counts its own). ``caller_max_queued`` caps one caller's
durable runs waiting or running across the whole deployment, counted from the run records
at submission; two submissions racing each other may both pass at the last free place.
Beyond either, the call is RESOURCE_EXHAUSTED naming the limit, and nothing was started.
0 turns a limit off.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

import grpc

from mediagen.scaffold.errors import ServiceError

CALLER_LIMIT = "CALLER_LIMIT"


def over_limit(setting: str, limit: int, caller: str, what: str) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"caller {caller} already has {limit} {what} ({setting}={limit})",
        CALLER_LIMIT,
        {"limit": setting, "value": str(limit), "caller": caller},
    )


class RunningRuns:
    """``Generate`` runs in progress per caller in this process."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._running: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, caller: str) -> Iterator[None]:
        """One place for ``caller`` while the block runs; RESOURCE_EXHAUSTED when none is free."""
        if self._limit and self._running[caller] >= self._limit:
            raise over_limit("caller_max_running", self._limit, caller, "runs generating")
        self._running[caller] += 1
        try:
            yield
        finally:
            self._running[caller] -= 1
            if not self._running[caller]:
                del self._running[caller]
