"""Crash resume: SIGKILL the gateway worker running a durable run, again and again.

A stack with an API-only gateway and two worker gateways. Each trial submits a
run of two outputs (one after the other, each held 0.6 s in the simulator),
makes sure a known worker takes it (the other one is paused with SIGSTOP until
the kill), and SIGKILLs that worker once the first output is stored and the
second is executing (``--kill-on stored``: right as the first output's
media_stored is logged). The survivor must take the run over when the dead
worker's claim lapses, keep the stored output, generate the second, and finish.
The killed worker is started again before the next trial, and the victim
alternates between the two.

Counted: runs that completed, media stored twice (more objects or records than
outputs), ComfyUI prompts still running or queued once all is done, and the
time from the kill to the watcher seeing the run RUNNING again.

    python -m bench.bench_runs_crash_resume [--trials 20] [--claim 3] [--kill-on executing|stored]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from grpc import aio

from bench.bench_runs_common import new_label, solid_output, submit_request
from mediagen.stack.local import LocalStack, StackConfig
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc, storage_pb2

if TYPE_CHECKING:
    from mediagen.v1.gateway_pb2_grpc import GatewayServiceAsyncStub as Stub

WORKERS = ("worker-1", "worker-2")
NODE_SECONDS = 0.6


@dataclass
class Tally:
    completed: int = 0
    stored_twice: int = 0
    resume_seconds: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def kill_point(event: gateway_pb2.RunEvent, kill_on: str) -> bool:
    """``executing``: the second output was accepted by ComfyUI (the first is stored and recorded
    by then); ``stored``: the moment the first output's media_stored is logged, before the worker
    may have recorded the output's outcome: the narrowest window."""
    if kill_on == "stored":
        return event.HasField("media_stored")
    return event.HasField("output_accepted") and event.output_accepted.output_index == 1


async def trial(stack: LocalStack, stub: Stub, label: str, victim: str, kill_on: str, tally: Tally) -> None:
    survivor = WORKERS[1 - WORKERS.index(victim)]
    os.kill(stack.processes[survivor].pid, signal.SIGSTOP)
    paused = True
    try:
        request = submit_request(label, [solid_output(), solid_output()])
        request.concurrency = 1
        status = await stub.SubmitRun(request, timeout=30)
        killed_at = resumed_at = None
        completed: gateway_pb2.RunCompleted | None = None
        watch = gateway_pb2.WatchRunRequest(run_id=status.run_id)
        async for event in stub.WatchRun(watch, timeout=120):
            kind = event.WhichOneof("event")
            if killed_at is None and kill_point(event, kill_on):
                os.kill(stack.processes[survivor].pid, signal.SIGCONT)
                paused = False
                stack.processes[victim].kill()
                killed_at = time.monotonic()
            elif kind == "state_changed" and killed_at is not None and resumed_at is None:
                if event.state_changed.state == gateway_pb2.RUN_STATE_RUNNING:
                    resumed_at = time.monotonic()
            elif kind == "run_completed":
                completed = event.run_completed
    finally:
        if paused:
            os.kill(stack.processes[survivor].pid, signal.SIGCONT)
    if completed is not None and completed.state == gateway_pb2.RUN_STATE_SUCCEEDED:
        tally.completed += 1
    else:
        tally.notes.append(f"{status.run_id}: {ending(completed)}")
    if killed_at is None or resumed_at is None:
        tally.notes.append(f"{status.run_id}: no kill/resume observed")
    else:
        tally.resume_seconds.append(resumed_at - killed_at)
    tally.stored_twice += await stored_twice(stack, stub, status.run_id, outputs=2)
    await asyncio.to_thread(stack.respawn, victim)


def ending(completed: gateway_pb2.RunCompleted | None) -> str:
    if completed is None:
        return "no run_completed"
    why = "; ".join(
        f"output {outcome.output_index}: {outcome.error.message[:120]}"
        for outcome in completed.outputs
        if outcome.HasField("error")
    )
    return f"ended {gateway_pb2.RunState.Name(completed.state)} {why}"


async def stored_twice(stack: LocalStack, stub: Stub, run_id: str, outputs: int) -> int:
    """Objects in MinIO, or media records, beyond one per output."""
    reply = await stub.GetRun(storage_pb2.GetRunRequest(run_id=run_id), timeout=30)
    records = [(media.output_index, media.item_index) for media in reply.media]
    assert stack.minio is not None
    client = stack.minio.client()
    objects = [
        item.object_name
        for item in client.list_objects(stack.bucket, prefix=f"runs/{run_id}/media/", recursive=True)
    ]
    return max(len(records) - len(set(records)), len(objects) - outputs, 0)


def prompts_left(stack: LocalStack, settle: float = 15.0) -> int:
    """Prompts running or pending in ComfyUI once the orphans had time to be cancelled."""
    deadline = time.monotonic() + settle
    while True:
        state = httpx.get(f"{stack.comfyui_url}/sim/state", timeout=5).json()
        left = len(state["running"]) + len(state["pending"])
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def slow_images(stack: LocalStack) -> None:
    httpx.post(
        f"{stack.comfyui_url}/sim/faults",
        json={"reset": True, "node_delay_s": {"EmptyImage": NODE_SECONDS}},
        timeout=5,
    ).raise_for_status()


async def run(stack: LocalStack, trials: int, kill_on: str) -> Tally:
    tally, label = Tally(), new_label()
    async with aio.insecure_channel(stack.gateway_address) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        for index in range(trials):
            await asyncio.wait_for(trial(stack, stub, label, WORKERS[index % 2], kill_on, tally), 180)
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description="SIGKILL the worker running a durable run")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--claim", type=float, default=3.0, help="claim_seconds of the workers")
    parser.add_argument(
        "--kill-on",
        choices=("executing", "stored"),
        default="executing",
        help="kill once the second output executes (default) or right as the first is stored",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mediagen-bench-") as work:
        config = StackConfig(
            work_dir=Path(work),
            gateway_env={"MEDIAGEN_GATEWAY_ROLE": "api"},
            gateway_workers=2,
            worker_env={"MEDIAGEN_GATEWAY_CLAIM_SECONDS": str(args.claim)},
        )
        with LocalStack(config) as stack:
            slow_images(stack)
            started = time.monotonic()
            tally = asyncio.run(run(stack, args.trials, args.kill_on))
            left = prompts_left(stack)
            elapsed = time.monotonic() - started
    resume = statistics.median(tally.resume_seconds) if tally.resume_seconds else float("nan")
    print(
        f"trials: {args.trials} (killed when {args.kill_on}, claim {args.claim:g} s, {elapsed:.0f} s in all)"
    )
    print(f"runs completed: {tally.completed}/{args.trials}")
    print(f"media stored twice: {tally.stored_twice}")
    print(f"ComfyUI prompts left running or queued: {left}")
    print(
        f"time from SIGKILL to RUNNING again: median {resume:.2f} s, "
        f"max {max(tally.resume_seconds, default=float('nan')):.2f} s (n={len(tally.resume_seconds)})"
    )
    for note in tally.notes:
        print(f"  note: {note}")
    ok = tally.completed == args.trials and tally.stored_twice == 0 and left == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
