"""Which runs a caller may see: its own, or every run for an admin.

A run belongs to the caller that created it (``Generate`` or ``SubmitRun``); the
owner is kept with the run (storage's ``run.json``, the durable run's record).
Every gateway call that names a run or its media answers a caller who does not
own it exactly as it answers for a run that does not exist: NOT_FOUND with the
same message, reason and metadata, so run ids leak nothing. Runs recorded
before runs had owners (no owner) are seen by admins only.
"""

from __future__ import annotations

import grpc

from mediagen.rules import stored_run_id_problem
from mediagen.scaffold.callers import Caller, current_caller
from mediagen.scaffold.errors import ServiceError


def sees(owner: str, caller: Caller | None = None) -> bool:
    """``caller`` (the current one by default) may see a run owned by ``owner``."""
    who = caller or current_caller()
    return who.admin or (bool(owner) and owner == who.name)


def run_not_found(run_id: str) -> ServiceError:
    """Storage's answer for a run it does not have, as the gateway passes it on."""
    return ServiceError(
        grpc.StatusCode.NOT_FOUND,
        f"run {run_id} does not exist",
        "RUN_NOT_FOUND",
        {"run_id": run_id, "peer": "storage"},
    )


def media_not_found(media_id: str) -> ServiceError:
    """Storage's answer for a media it does not have, as the gateway passes it on."""
    return ServiceError(
        grpc.StatusCode.NOT_FOUND,
        f"media {media_id} does not exist",
        "MEDIA_NOT_FOUND",
        {"media_id": media_id, "peer": "storage"},
    )


def run_of_media(media_id: str) -> str | None:
    """The run a well-formed media id (``<run_id>.<output>.<item>``) belongs to; None otherwise.

    A malformed id is left to storage, which refuses it with INVALID_ARGUMENT whoever asks.
    """
    parts = media_id.split(".")
    if len(parts) != 3 or stored_run_id_problem(parts[0]):
        return None
    # ASCII digits within uint32 only, as storage reads them ("²".isdigit() is true too).
    if not all(part.isascii() and part.isdigit() and int(part) < 2**32 for part in parts[1:]):
        return None
    return parts[0]
