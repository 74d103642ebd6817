"""Storage killed mid-stream and a new storage process started: how long until nothing is left open?

A killed process cannot abort its multipart upload. The next storage process
(here a fresh one on the same address, as an orchestrator would restart it)
sees the dead process's lease go stale and aborts the uploads it had marked,
by exact key and upload id. What is timed is the kill to the moment the run
has no unfinished upload left in MinIO.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from bench.faults.kills import RATE, SIZE, STATUS_LIMIT, STRIKE_AFTER
from bench.faults.rig import Rig, Row
from bench.faults.watch import large_output
from mediagen.stack import parts
from mediagen.stack.local import LocalStack
from mediagen.stack.process import ManagedProcess
from mediagen.stack.readiness import grpc_serving

ORPHAN_LIMIT = 30.0
TARGET_S = 10.0


def restart_storage(stack: LocalStack, timeout: float = 30.0) -> None:
    """A new storage process on the dead one's address, with the same settings."""
    assert stack.minio is not None
    address = stack.addresses["storage"]
    port = int(address.rsplit(":", 1)[1])
    env = {
        **parts.base_env(stack.config.log_format),
        **parts.storage_env(port, stack.minio, stack.bucket, stack.config.storage_env),
    }
    process = ManagedProcess(
        "storage", parts.service_argv("storage_service"), env, stack.log_dir / "storage-restarted.log"
    )
    stack.processes["storage"] = process
    process.wait_until(lambda: grpc_serving(address), timeout, "SERVING")


async def storage_killed_then_restarted(rig: Rig) -> Row:
    row = Row("storage killed, then restarted")
    await rig.faults(view_bytes_per_s=RATE)
    run_id = f"kill-restart-storage-{uuid.uuid4().hex[:8]}"
    watch = rig.start_run(large_output(SIZE, seed=11), run_id=run_id, timeout=120)
    try:
        await rig.mid_transfer(watch, STRIKE_AFTER)
        row.notes.append(f"{await rig.uploads_now(run_id)} upload(s) open at the fault")
        killed_at = time.monotonic()
        await asyncio.to_thread(rig.s.processes["storage"].kill)
        status = await watch.wait_status(STATUS_LIMIT)
        row.heard(status, killed_at)
        if status is not None:
            row.notes.append(f"message: {status.message[:140]}")
        await asyncio.to_thread(restart_storage, rig.s)
        restarted = time.monotonic() - killed_at
        row.notes.append(f"new storage SERVING {restarted:.1f} s after the kill")
        found, _ = await rig.settle(row, run_id, ORPHAN_LIMIT)
        row.freed = "n/a (storage)"
        if found.uploads:
            row.baseline = f"upload(s) still open {ORPHAN_LIMIT:.0f} s after the restart"
        else:
            gone = time.monotonic() - killed_at
            verdict = "met" if gone <= TARGET_S else "NOT met"
            row.baseline = (
                f"0 orphaned uploads {gone:.1f} s after the kill, target <= {TARGET_S:.0f} s: {verdict}"
            )
    finally:
        await watch.close()
    return row
