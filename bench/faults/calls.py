"""Scenarios where the caller ends the run: a cancel, a gRPC deadline, an output timeout.

Nothing dies here, so the stack is intact afterwards and the interesting
numbers are how soon ComfyUI is freed (the prompt interrupted or removed, the
download stopped) and how far past the deadline the caller hears of it.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from bench.faults.kills import FREED_LIMIT, RATE, SETTLE_LIMIT, SIZE, STRIKE_AFTER
from bench.faults.observe import comfyui_freed
from bench.faults.rig import Rig, Row
from bench.faults.watch import MiB, RunWatch, large_output

DEADLINE_S = 3.0


async def _finish(rig: Rig, row: Row, watch: RunWatch, since: float) -> None:
    """ComfyUI freed since ``since``, then what the bucket holds for the run."""
    seconds = await comfyui_freed(rig.http, rig.s.comfyui_url, watch.prompt_id, since, FREED_LIMIT)
    row.freed_after(seconds)
    await rig.settle(row, watch.run_id, SETTLE_LIMIT)


async def caller_cancels(rig: Rig, executing: bool) -> Row:
    """Cancel mid-download, or while the node still runs (then an interrupt must free ComfyUI)."""
    row = Row(f"caller cancel ({'executing' if executing else 'mid-transfer'})")
    if executing:
        await rig.faults(hang_nodes=["SimLargeImage"])
    else:
        await rig.faults(view_bytes_per_s=RATE)
    run_id = f"cancel-{uuid.uuid4().hex[:8]}"
    watch = rig.start_run(large_output(MiB if executing else SIZE, seed=11), run_id=run_id, timeout=120)
    try:
        if executing:
            await watch.accepted.wait()
            await _wait_running(rig, watch.prompt_id)
        else:
            await rig.mid_transfer(watch, STRIKE_AFTER)
        before = (await rig.state())["interrupts"]
        cancelled_at = time.monotonic()
        watch.call.cancel()
        status = await watch.wait_status(5)
        if status is not None:
            row.code, row.to_status = status.code, status.at - cancelled_at
        await _finish(rig, row, watch, cancelled_at)
        row.baseline = (
            f"freed {row.freed:.0f} ms after cancel" if isinstance(row.freed, float) else "not freed"
        )
        row.notes.append(f"interrupts sent to ComfyUI: {(await rig.state())['interrupts'] - before}")
    finally:
        await watch.close()
    return row


async def _wait_running(rig: Rig, prompt_id: str, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while prompt_id not in (await rig.state())["running"]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"prompt {prompt_id} did not start within {limit:.0f}s")
        await asyncio.sleep(0.05)


async def deadline_passes(rig: Rig, grpc_deadline: bool) -> Row:
    """The node hangs; either the call's gRPC deadline or the output's own timeout ends the run."""
    which = "gRPC deadline" if grpc_deadline else "output timeout"
    row = Row(f"{which} {DEADLINE_S:.0f}s (node hangs)")
    await rig.faults(hang_nodes=["SimLargeImage"])
    run_id = f"deadline-{uuid.uuid4().hex[:8]}"
    spec = large_output(MiB, seed=13, timeout=0 if grpc_deadline else DEADLINE_S)
    watch = rig.start_run(spec, run_id=run_id, timeout=DEADLINE_S if grpc_deadline else 30)
    try:
        status = await watch.wait_status(DEADLINE_S + 20)
        if status is None:
            row.baseline = "no status"
            return row
        row.code, row.to_status = status.code, status.at - watch.started
        row.baseline = f"{(row.to_status - DEADLINE_S) * 1000:+.0f} ms past the deadline"
        if not watch.prompt_id:
            row.notes.append("the prompt was never accepted as far as the caller saw")
            row.freed = "unknown"
            return row
        await _finish(rig, row, watch, status.at)
        state = await rig.state()
        row.notes.append(f"interrupts={state['interrupts']}, still running={state['running']}")
        row.notes.append(f"message: {status.message[:140]}")
    finally:
        await watch.close()
    return row
