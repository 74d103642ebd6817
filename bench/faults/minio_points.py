"""MinIO SIGKILLed at ten exact points of one multipart upload, many times over.

The storage service reaches MinIO through :class:`~bench.faults.s3_relay.S3Relay`,
which kills MinIO at a chosen S3 request of the upload: CreateMultipartUpload,
an UploadPart near the start, in the middle, the last one, or
CompleteMultipartUpload, either before the request reaches MinIO or after
MinIO did it with the answer lost. Each trial then restarts MinIO (same
address and data) while storage keeps running, and checks, within a minute:
the caller's status (never INTERNAL), no media object and no record of the
run, no unfinished upload of the media's exact key (the only listing that
shows an upload older than a MinIO restart), and no upload marker left.

One exception is expected and reported apart: CompleteMultipartUpload done
with its answer lost leaves the media whole (object and record), which a
retry of the write returns.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from bench.faults.observe import leftovers, media_key
from bench.faults.rig import Rig, Row
from bench.faults.s3_relay import S3Relay, Strike
from bench.faults.watch import MiB, large_output
from mediagen.stack.minio import MinioEndpoint
from mediagen.stack.readiness import grpc_serving

SIZE = 48 * MiB  # six 8 MiB parts
RATE = 48 * MiB
STATUS_LIMIT = 30.0
CLEAN_LIMIT = 60.0


@dataclass(frozen=True)
class Point:
    name: str
    method: str
    query: str  # the query parameter that marks the request
    part: int = 0  # for UploadPart: which part number
    answered: bool = False

    def matches(self, method: str, target: str) -> bool:
        query = parse_qs(urlsplit(target).query, keep_blank_values=True)
        if method != self.method or self.query not in query:
            return False
        return not self.part or query.get("partNumber") == [str(self.part)]


POINTS = (
    Point("create, before MinIO saw it", "POST", "uploads"),
    Point("create, answer lost", "POST", "uploads", answered=True),
    Point("first part, before", "PUT", "partNumber", part=1),
    Point("first part, answer lost", "PUT", "partNumber", part=1, answered=True),
    Point("second part, before", "PUT", "partNumber", part=2),
    Point("middle part, before", "PUT", "partNumber", part=3),
    Point("middle part, answer lost", "PUT", "partNumber", part=4, answered=True),
    Point("last part, before", "PUT", "partNumber", part=6),
    Point("complete, before", "POST", "uploadId"),
    Point("complete, answer lost", "POST", "uploadId", answered=True),
)


@dataclass
class Trial:
    point: Point
    code: str
    to_status: float | None
    clean_after: float | None  # seconds from MinIO back to nothing left; None: not within the limit
    objects: int
    records: int
    uploads: int
    markers: int


async def one_trial(rig: Rig, relay: S3Relay, point: Point, seed: int) -> Trial:
    killed_at: list[float] = []

    def kill() -> None:
        killed_at.append(time.monotonic())
        rig.minio.kill()

    await _until_serving(rig)
    relay.strike = Strike(point.matches, point.answered, kill)
    await rig.faults(view_bytes_per_s=RATE)
    run_id = f"points-{uuid.uuid4().hex[:10]}"
    watch = rig.start_run(large_output(SIZE, seed=seed), run_id=run_id, timeout=90)
    try:
        status = await watch.wait_status(STATUS_LIMIT)
    finally:
        await watch.close()
    relay.strike = None
    code = status.code if status is not None else "NO STATUS"
    to_status = status.at - killed_at[0] if status is not None and killed_at else None
    if not killed_at:
        code = f"{code} (never struck)"
    if killed_at:
        await asyncio.to_thread(rig.minio.start)
    back = time.monotonic()
    while True:
        found = await asyncio.to_thread(leftovers, rig.client, rig.s.bucket, run_id)
        markers = await asyncio.to_thread(_markers, rig)
        stored = (found.media_objects, found.records)
        allowed = {(0, 0), (1, 1)} if _may_stay_whole(point) else {(0, 0)}
        clean = found.uploads == 0 and markers == 0 and found.partial == 0 and stored in allowed
        elapsed = time.monotonic() - back
        if clean or elapsed > CLEAN_LIMIT:
            return Trial(point, code, to_status, elapsed if clean else None, *stored, found.uploads, markers)
        await asyncio.sleep(0.5)


def _may_stay_whole(point: Point) -> bool:
    """CompleteMultipartUpload done, answer lost: the media is whole and stays."""
    return point.answered and point.query == "uploadId"


async def _until_serving(rig: Rig, limit: float = 30.0) -> None:
    """Storage (and the gateway in front of it) SERVING again after the last trial's outage."""
    deadline = time.monotonic() + limit
    for name in ("storage", "gateway"):
        while not await asyncio.to_thread(grpc_serving, rig.s.addresses[name]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not SERVING {limit:.0f}s after MinIO came back")
            await asyncio.sleep(0.2)


def _markers(rig: Rig) -> int:
    return sum(1 for _ in rig.client.list_objects(rig.s.bucket, "uploads/", recursive=True))


async def minio_killed_at_points(rig: Rig, relay: S3Relay, trials: int) -> tuple[Row, list[Trial]]:
    done: list[Trial] = []
    for index in range(trials):
        done.append(await one_trial(rig, relay, POINTS[index % len(POINTS)], seed=index))
    codes = Counter(t.code for t in done)
    row = Row(f"MinIO killed at {len(POINTS)} points x {trials // len(POINTS)}")
    row.code = ", ".join(f"{code} x{count}" for code, count in sorted(codes.items()))
    timed = [t.to_status for t in done if t.to_status is not None]
    row.to_status = max(timed) if timed else None
    row.baseline = "worst"
    row.partial = sum(
        t.objects + t.records for t in done if not (_may_stay_whole(t.point) and t.objects == t.records)
    )
    row.uploads = sum(t.uploads for t in done)
    row.duplicates = 0
    row.freed = "n/a"
    slowest = max((t.clean_after for t in done if t.clean_after is not None), default=0.0)
    unclean = sum(t.clean_after is None for t in done)
    row.notes.append(f"clean within {slowest:.1f}s of MinIO back in every trial but {unclean}")
    for trial in done:
        row.notes.append(
            f"{trial.point.name}: {trial.code}, objects={trial.objects} records={trial.records} "
            f"uploads={trial.uploads} markers={trial.markers} "
            f"clean after {'-' if trial.clean_after is None else f'{trial.clean_after:.1f}s'}"
        )
    return row, done


def _whole_allowed(trial: Trial) -> bool:
    return _may_stay_whole(trial.point) and trial.objects == trial.records


class RelayedRig(Rig):
    """A :class:`Rig` whose storage service reaches MinIO through an :class:`S3Relay`."""

    def __init__(self) -> None:
        super().__init__()
        self.relay = S3Relay("")

    async def storage_endpoint(self) -> MinioEndpoint:
        """MinIO's credentials at the relay's address."""
        endpoint = await super().storage_endpoint()
        self.relay.upstream = endpoint.endpoint
        return MinioEndpoint(await self.relay.start(), endpoint.access_key, endpoint.secret_key)

    async def close(self) -> None:
        await super().close()
        await self.relay.stop()


__all__ = ["POINTS", "RelayedRig", "media_key", "minio_killed_at_points"]
