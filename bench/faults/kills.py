"""Scenarios where a part of the stack dies while a large file is on its way.

The run stores one large, incompressible PNG whose ``/view`` download is
throttled, so the fault lands while bytes are flowing from ComfyUI through
the generator and gateway into a multipart upload in MinIO. What is timed is
the fault to the caller's first clear status; what is checked is what stays
behind once things settle.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from bench.faults.observe import comfyui_freed
from bench.faults.rig import Rig, Row
from bench.faults.watch import MiB, large_output

SIZE = 128 * MiB
RATE = 16 * MiB
STRIKE_AFTER = 24 * MiB  # three 8 MiB parts: a multipart upload is open by then
STATUS_LIMIT = 20.0
FREED_LIMIT = 8.0
SETTLE_LIMIT = 10.0
TARGET_S = 5.0


def _target(seconds: float | None) -> str:
    if seconds is None:
        return f"no status in {STATUS_LIMIT:.0f}s"
    return f"target <= {TARGET_S:.0f}s: {'met' if seconds <= TARGET_S else 'NOT met'}"


async def killed(rig: Rig, name: str, victim: str, kill: Callable[[], None] | None = None) -> Row:
    """Kill ``victim`` (a stack process, or via ``kill``) mid-transfer and see what follows."""
    row = Row(name)
    await rig.faults(view_bytes_per_s=RATE)
    run_id = f"kill-{victim}-{uuid.uuid4().hex[:8]}"
    watch = rig.start_run(large_output(SIZE, seed=7), run_id=run_id, timeout=120)
    try:
        await rig.mid_transfer(watch, STRIKE_AFTER)
        open_uploads = await rig.uploads_now(run_id)
        row.notes.append(f"{open_uploads} upload(s) open at the fault")
        killed_at = time.monotonic()
        await asyncio.to_thread(kill or rig.s.processes[victim].kill)
        freed = None
        if victim != "comfyui-sim":
            freed = asyncio.ensure_future(
                comfyui_freed(rig.http, rig.s.comfyui_url, watch.prompt_id, killed_at, FREED_LIMIT)
            )
        status = await watch.wait_status(STATUS_LIMIT)
        row.heard(status, killed_at)
        if status is not None:
            row.notes.append(f"message: {status.message[:140]}")
        row.baseline = _target(row.to_status)
        if freed is None:
            row.freed = "n/a (killed)"
        else:
            seconds = await freed
            row.freed_after(seconds)
        if victim == "minio":
            await asyncio.to_thread(rig.minio.start)
            row.notes.append(f"MinIO restarted: {await rig.uploads_now(run_id)} upload(s) open right after")
        found, took = await rig.settle(row, run_id, SETTLE_LIMIT)
        if found.uploads:
            row.notes.append(f"upload(s) still open {SETTLE_LIMIT:.0f}s after the status")
        elif took:
            row.notes.append(f"uploads gone {took * 1000:.0f} ms after the check began")
    finally:
        await watch.close()
    return row


async def generator_killed_while_executing(rig: Rig) -> Row:
    """The generator dies while the prompt runs: is anyone left to stop it on ComfyUI?"""
    row = Row("generator killed (executing)")
    node_seconds = 15.0
    await rig.faults(node_delay_s={"SimLargeImage": node_seconds})
    run_id = f"kill-gen-exec-{uuid.uuid4().hex[:8]}"
    watch = rig.start_run(large_output(MiB, seed=3), run_id=run_id, timeout=60)
    try:
        killed_at = await rig.kill_generator_executing(watch)
        row.heard(await watch.wait_status(STATUS_LIMIT), killed_at)
        row.baseline = _target(row.to_status)
        seconds = await comfyui_freed(rig.http, rig.s.comfyui_url, watch.prompt_id, killed_at, FREED_LIMIT)
        row.freed_after(seconds)
        if seconds is None:
            later = await comfyui_freed(
                rig.http, rig.s.comfyui_url, watch.prompt_id, killed_at, node_seconds + 5
            )
            state = await rig.state()
            ran = "never" if later is None else f"after {later:.1f}s"
            row.notes.append(
                f"prompt left the queue {ran} (node delay {node_seconds:.0f}s), "
                f"interrupts={state['interrupts']}"
            )
        await rig.settle(row, run_id, SETTLE_LIMIT)
    finally:
        await watch.close()
    return row
