"""Queueing: a thousand durable runs submitted at once against two simulated backends.

Runs of one small image each, a third each at low, normal and high priority in
shuffled order, go in through SubmitRun with 64 calls in flight; one gateway
(API and worker) executes them against two ComfyUI simulators behind one
generator. Checked once every run is final:

- every run completed (SUCCEEDED);
- priorities were respected: no run started while a run of higher priority,
  submitted before it started, was still waiting. A run is taken some
  milliseconds before its start is recorded, so a higher-priority run
  submitted within ``--slack`` of the start is not counted (the strict count
  is printed too);
- the peak resident memory of every service (the kernel's high-water mark).

    python -m bench.bench_runs_queueing [--runs 1000] [--worker-runs 4] [--slack 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from grpc import aio

from bench.bench_runs_common import (
    list_labelled,
    new_label,
    seconds_of,
    solid_output,
    submit_all,
    submit_request,
    wait_all_final,
)
from bench.memory import peak_rss_mib
from mediagen.stack.local import LocalStack, StackConfig
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc

PRIORITIES = (gateway_pb2.RUN_PRIORITY_LOW, gateway_pb2.RUN_PRIORITY_NORMAL, gateway_pb2.RUN_PRIORITY_HIGH)
SERVICES = ("storage", "generator", "gateway")
RSS_TARGET_MIB = 128.0


def priority_inversions(runs: list[gateway_pb2.RunStatus], slack: float) -> list[float]:
    """For each run that started while a higher-priority run submitted before (by ``slack``)
    still waited: how long that run had been waiting by then (the longest such wait)."""
    started = [(seconds_of(run.started_at), seconds_of(run.created_at), int(run.priority)) for run in runs]
    waits = []
    for start, _, priority in started:
        waited = [
            start - other_created
            for other_start, other_created, other_priority in started
            if other_priority > priority and other_created < start - slack and other_start > start
        ]
        if waited:
            waits.append(max(waited))
    return waits


async def run(stack: LocalStack, count: int) -> tuple[list[gateway_pb2.RunStatus], float, float]:
    label = new_label()
    requests = [submit_request(label, [solid_output()], PRIORITIES[i % 3]) for i in range(count)]
    random.shuffle(requests)
    async with aio.insecure_channel(stack.gateway_address) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        began = time.monotonic()
        await submit_all(stub, requests)
        submitted = time.monotonic() - began
        final = await wait_all_final(stub, label, count, within=60 + count * 1.0)
        drained = time.monotonic() - began
        assert len(await list_labelled(stub, label)) == count
    return final, submitted, drained


def main() -> int:
    parser = argparse.ArgumentParser(description="a thousand runs at once on two backends")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--worker-runs", type=int, default=4, help="runs the gateway executes at once")
    parser.add_argument("--slack", type=float, default=0.25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mediagen-bench-") as work:
        config = StackConfig(
            work_dir=Path(work),
            simulators=2,
            gateway_env={"MEDIAGEN_GATEWAY_WORKER_RUNS": str(args.worker_runs)},
        )
        with LocalStack(config) as stack:
            final, submitted, drained = asyncio.run(run(stack, args.runs))
            memory = peak_rss_mib(stack.pids())
    succeeded = sum(1 for run_ in final if run_.state == gateway_pb2.RUN_STATE_SUCCEEDED)
    inversions = priority_inversions(final, args.slack)
    strict = priority_inversions(final, 0.0)
    services = {name: mib for name, mib in memory.items() if name in SERVICES}
    others = {name: mib for name, mib in memory.items() if name not in SERVICES}
    print(f"runs: {args.runs} submitted in {submitted:.1f} s, all final after {drained:.1f} s")
    print(f"  ({args.runs / drained:.1f} runs/s, {args.worker_runs} at once, 2 simulated backends)")
    print(f"completed: {succeeded}/{args.runs}")
    print(
        f"priority inversions: {len(inversions)} (slack {args.slack:g} s), {len(strict)} strict; "
        f"the higher-priority run had waited {', '.join(f'{wait:.3f}' for wait in sorted(strict)) or '-'} s"
    )
    print(f"peak RSS MiB, services: {services} (target <= {RSS_TARGET_MIB:.0f} each)")
    print(f"peak RSS MiB, others: {others}")
    over = [name for name, mib in services.items() if mib > RSS_TARGET_MIB]
    ok = succeeded == args.runs and not inversions and not over
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
