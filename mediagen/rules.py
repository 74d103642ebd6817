"""Rules about requests that more than one service applies, written once.

A run id is checked by the gateway (before a run exists) and by storage (which names objects
after it); a time limit by the generator, whose answer the gateway passes on. Each rule returns
the words of its violation, or "" when the value is fine, so every service reports it alike.
"""

from __future__ import annotations

import math
import re

from google.protobuf import duration_pb2

RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
RUN_ID_RULE = "must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'"

INPUT_HEADER_BYTES = 64
"""An input's format is judged from this many first bytes (so a checker may be sent only them)."""

MIN_TIMEOUT_SECONDS = 1.0
"""Below a second no job can even be queued; such a limit is a mistake, not a wish."""


STORED_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
STORED_RUN_ID_RULE = "must be 1-80 characters of A-Z, a-z, 0-9, '_' and '-'"
"""Storage takes longer ids than a caller may choose: the gateway stores a caller-chosen id
under the caller's tag (:mod:`gateway.run_ids`)."""


def run_id_problem(run_id: str) -> str:
    """A run id a caller chooses."""
    return "" if RUN_ID.fullmatch(run_id) else RUN_ID_RULE


def stored_run_id_problem(run_id: str) -> str:
    """A run id storage names objects after."""
    return "" if STORED_RUN_ID.fullmatch(run_id) else STORED_RUN_ID_RULE


def duration_seconds(duration: duration_pb2.Duration) -> float:
    """A Duration in seconds, for any value the message can hold (``ToTimedelta`` overflows)."""
    return duration.seconds + duration.nanos / 1e9


def timeout_problem(timeout: duration_pb2.Duration) -> str:
    """Zero means "the default"; anything else must be at least :data:`MIN_TIMEOUT_SECONDS`."""
    if timeout.seconds < 0 or timeout.nanos < 0:
        return "must not be negative"
    seconds = duration_seconds(timeout)
    if seconds and seconds < MIN_TIMEOUT_SECONDS:
        return f"must be 0 (the default) or at least {MIN_TIMEOUT_SECONDS:g}s"
    return ""


def place_wait_problem(place_wait: duration_pb2.Duration) -> str:
    """Zero means "the default"; a longer wait than the service allows is capped, not refused."""
    if place_wait.seconds < 0 or place_wait.nanos < 0:
        return "must not be negative"
    return ""


def number_problem(value: float) -> str:
    """NaN and infinities are not values any workflow can use (and JSON cannot carry them)."""
    return "" if math.isfinite(value) else "must be a finite number"


PUT_REFUSED_METADATA_KEY = "mediagen-put-refused"
"""Initial-metadata key storage sends on a PutMedia call it has failed (value: the status code's
name) before it drains the rest of the caller's stream; a caller that sees it stops sending and
reads storage's status, instead of having a late send overwrite that status with INTERNAL."""
