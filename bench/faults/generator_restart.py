"""The generator is killed while its prompt runs, then started again on the same state directory.

Nothing else ever stops a prompt on ComfyUI (it has no server-side timeout), so the measure is
how long after the restart the prompt is gone from ComfyUI's queue, and whether its history
entry went with it. The prompt's node runs until interrupted and notices an interrupt at once,
like a sampler reporting progress (a node without progress hooks would run to its end first,
whoever sends the interrupt). The stack's generator is first swapped for one with a state directory of
the scenario's own (and no NATS), so the journal read on restart is exactly the one the killed
process wrote.

The other scenario keeps the journal in NATS, as the stack configures it, and starts a second
replica on the same ComfyUI: the generator running the prompt is killed and never comes back,
and the measure is how long after the kill the other replica has freed ComfyUI (the dead
replica's lease, ``lease_seconds``, has to lapse first).
"""

from __future__ import annotations

import asyncio
import time
import uuid

from bench.faults.observe import comfyui_freed
from bench.faults.rig import Rig, Row
from bench.faults.watch import MiB, RunWatch, large_output
from mediagen.ports import free_port
from mediagen.stack import parts
from mediagen.stack.local import LocalStack
from mediagen.stack.process import ManagedProcess
from mediagen.stack.readiness import grpc_serving

STATUS_LIMIT = 20.0
FREED_LIMIT = 8.0
SETTLE_LIMIT = 10.0
START_LIMIT = 30.0
TARGET_S = 5.0


def _run_generator(stack: LocalStack, name: str, port: int, overrides: dict[str, str]) -> None:
    """A generator process on the stack's ComfyUI at ``port``, stopped with the stack."""
    config = stack.config
    env = {
        **parts.base_env(config.log_format),
        **parts.generator_env(
            port, stack.comfyui_url, config.comfyui_command, {**config.generator_env, **overrides}
        ),
    }
    argv = parts.service_argv("generator_service")
    process = ManagedProcess(name, argv, env, stack.log_dir / f"{name}.log")
    stack.processes[name] = process
    address = f"{config.host}:{port}"
    process.wait_until(lambda: grpc_serving(address), START_LIMIT, "SERVING")


def _start_generator(stack: LocalStack, state_dir: str) -> None:
    """Start (or restart) the stack's generator on its address, with ``state_dir`` as its journal."""
    port = int(stack.addresses["generator"].rsplit(":", 1)[1])
    overrides = {"MEDIAGEN_GENERATOR_STATE_DIR": state_dir, "MEDIAGEN_GENERATOR_NATS_URL": ""}
    _run_generator(stack, "generator", port, overrides)


async def generator_killed_then_restarted(rig: Rig) -> Row:
    row = Row("generator killed, restarted (executing)")
    state_dir = str(rig.work / "generator-state")
    await asyncio.to_thread(rig.s.processes["generator"].stop)
    await asyncio.to_thread(_start_generator, rig.s, state_dir)
    await rig.faults(hang_nodes=["SimLargeImage"])
    run_id = f"restart-gen-{uuid.uuid4().hex[:8]}"
    watch = rig.start_run(large_output(MiB, seed=5), run_id=run_id, timeout=60)
    try:
        killed_at = await rig.kill_generator_executing(watch)
        row.heard(await watch.wait_status(STATUS_LIMIT), killed_at)
        restarted_at = time.monotonic()
        await asyncio.to_thread(_start_generator, rig.s, state_dir)
        row.notes.append(f"generator SERVING again {time.monotonic() - restarted_at:.1f}s after restart")
        seconds = await comfyui_freed(rig.http, rig.s.comfyui_url, watch.prompt_id, restarted_at, FREED_LIMIT)
        await _conclude(rig, row, watch, seconds, _verdict(seconds))
    finally:
        await watch.close()
    return row


def _start_replica(stack: LocalStack, name: str) -> None:
    """Another generator on the stack's ComfyUI and NATS (no gateway sends it anything)."""
    assert stack.nats is not None
    _run_generator(stack, name, free_port(stack.config.host), {"MEDIAGEN_GENERATOR_NATS_URL": stack.nats.url})


async def generator_killed_other_replica_frees(rig: Rig) -> Row:
    row = Row("generator killed (executing), another replica frees")
    await asyncio.to_thread(_start_replica, rig.s, "generator-2")
    await rig.faults(hang_nodes=["SimLargeImage"])
    run_id = f"adopt-gen-{uuid.uuid4().hex[:8]}"
    watch = rig.start_run(large_output(MiB, seed=6), run_id=run_id, timeout=60)
    try:
        killed_at = await rig.kill_generator_executing(watch)
        freeing = asyncio.ensure_future(
            comfyui_freed(rig.http, rig.s.comfyui_url, watch.prompt_id, killed_at, FREED_LIMIT)
        )
        row.heard(await watch.wait_status(STATUS_LIMIT), killed_at)
        seconds = await freeing
        met = "met" if seconds is not None and seconds <= TARGET_S else "NOT met"
        await _conclude(rig, row, watch, seconds, f"freed <= {TARGET_S:.0f}s after the kill: {met}")
    finally:
        await watch.close()
    return row


async def _conclude(rig: Rig, row: Row, watch: RunWatch, freed: float | None, baseline: str) -> None:
    """When ComfyUI was freed, what became of the prompt's history entry, what the bucket kept."""
    row.freed_after(freed)
    row.baseline = baseline
    if freed is not None:
        row.notes.append(await _history_note(rig, watch.prompt_id))
    await rig.settle(row, watch.run_id, SETTLE_LIMIT)


async def _history_note(rig: Rig, prompt_id: str, limit: float = 2.0) -> str:
    """The interrupted prompt's history entry should follow it out within moments."""
    give_up = time.monotonic() + limit
    while (await rig.http.get(f"{rig.s.comfyui_url}/history/{prompt_id}")).json():
        if time.monotonic() > give_up:
            return f"history entry still there {limit:.0f}s after ComfyUI was freed"
        await asyncio.sleep(0.05)
    state = await rig.state()
    return f"history entry deleted; interrupts sent: {state['interrupts']}"


def _verdict(freed_after_restart: float | None) -> str:
    if freed_after_restart is None:
        return f"ComfyUI not freed within {FREED_LIMIT:.0f}s of the restart"
    met = "met" if freed_after_restart <= TARGET_S else "NOT met"
    return f"freed <= {TARGET_S:.0f}s after restart: {met}"
