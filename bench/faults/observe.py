"""What a fault left behind, read from the outside only.

ComfyUI counts as freed once the run's prompt is neither running nor pending
*and* the simulator has stopped sending its file: during a download the
prompt is already finished, so the only thing still held is the ``/view``
stream, whose progress shows in the simulator's ``bytes_served`` counter.
Storage is judged by what is in the bucket under the run's prefix.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from minio import Minio

from gateway.run_ids import RunIds
from mediagen.scaffold.callers import ANONYMOUS

# bytes_served unchanged for this long counts as "no longer sending".
QUIET_SECONDS = 0.6
POLL_SECONDS = 0.05


async def sim_state(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await http.get(f"{url}/sim/state", timeout=2.0)
    response.raise_for_status()
    state: dict[str, Any] = response.json()
    return state


async def set_faults(http: httpx.AsyncClient, url: str, **faults: Any) -> None:
    response = await http.post(f"{url}/sim/faults", json={"reset": True, **faults}, timeout=5.0)
    response.raise_for_status()


async def comfyui_freed(
    http: httpx.AsyncClient, url: str, prompt_id: str, since: float, limit: float
) -> float | None:
    """Seconds from ``since`` until the prompt is gone and its download stopped.

    None when that did not happen within ``limit`` seconds of ``since``.
    """
    last_bytes, quiet_from = -1, 0.0
    while time.monotonic() - since < limit:
        state = await sim_state(http, url)
        now = time.monotonic()
        queued = prompt_id in state["running"] or prompt_id in state["pending"]
        served = int(state["bytes_served"])
        if queued or served != last_bytes:
            last_bytes, quiet_from = served, now
        elif now - quiet_from >= QUIET_SECONDS:
            return max(quiet_from - since, 0.0)
        await asyncio.sleep(POLL_SECONDS)
    return None


@dataclass
class Leftovers:
    media_objects: int
    records: int
    partial: int
    """Media objects without a record, plus records without a media object."""
    uploads: int
    duplicates: int
    """Media objects beyond one per (output, item) slot."""


def stored_run_id(run_id: str) -> str:
    """The id storage holds a run under that the bench chose through the gateway (whose caller it
    is: ``anonymous``, no credentials), see :mod:`gateway.run_ids`."""
    return RunIds(ANONYMOUS).stored(run_id)


def media_key(run_id: str, output: int = 0, item: int = 0, extension: str = "png") -> str:
    """Where storage puts the media of the run the bench chose ``run_id`` for (see the storage
    service's layout)."""
    return f"runs/{stored_run_id(run_id)}/media/o{output:03d}-i{item:03d}.{extension}"


def uploads_under(client: Minio, bucket: str, prefix: str, keys: tuple[str, ...] = ()) -> int:
    """Unfinished uploads under ``prefix``, also asked for each exact key in ``keys``.

    A MinIO that restarted lists an upload left from before only when asked
    for its exact object name, not under a shorter prefix nor in a bucket-wide
    listing, so a crash's leftovers are looked for key by key as well.
    """
    found = {
        upload.upload_id
        for upload in client._list_multipart_uploads(bucket, max_uploads=1000).uploads
        if (upload.object_name or "").startswith(prefix)
    }
    for key in keys:
        found.update(u.upload_id for u in client._list_multipart_uploads(bucket, prefix=key).uploads)
    return len(found)


def leftovers(client: Minio, bucket: str, run_id: str) -> Leftovers:
    """What is left in MinIO of the run the bench chose ``run_id`` for."""
    prefix = f"runs/{stored_run_id(run_id)}/"
    names = [o.object_name or "" for o in client.list_objects(bucket, prefix=prefix, recursive=True)]
    media = [name for name in names if name.startswith(f"{prefix}media/")]
    per_slot = Counter(_stem(name) for name in media)
    recorded = {_stem(name) for name in names if name.startswith(f"{prefix}records/")}
    return Leftovers(
        media_objects=len(media),
        records=len(recorded),
        partial=len(set(per_slot) ^ recorded),
        uploads=uploads_under(client, bucket, prefix, (media_key(run_id),)),
        duplicates=sum(count - 1 for count in per_slot.values()),
    )


def _stem(key: str) -> str:
    """``runs/R/media/o000-i000.png`` and ``runs/R/records/o000-i000.json`` -> ``o000-i000``."""
    return key.rsplit("/", 1)[-1].split(".", 1)[0]


async def settled_leftovers(
    client: Minio, bucket: str, run_id: str, limit: float
) -> tuple[Leftovers, float | None]:
    """Poll until no upload is left (clean-up may trail the status); (last view, seconds it took or None)."""
    started = time.monotonic()
    while True:
        found = await asyncio.to_thread(leftovers, client, bucket, run_id)
        if found.uploads == 0:
            return found, time.monotonic() - started
        if time.monotonic() - started >= limit:
            return found, None
        await asyncio.sleep(0.2)
