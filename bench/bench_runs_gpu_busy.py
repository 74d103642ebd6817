"""GPU busy: with a backlog of durable runs, are four backends kept busy all the time?

Four ComfyUI simulators, each job held 200 ms in its image node, behind one
generator; an API-only gateway takes the submissions and worker gateways
(one by default) execute them. The workers are paused (SIGSTOP) while the
backlog is submitted, so the queue is full before the first run is taken. Each backend's busy time
is the time its queue was not empty, from the ``status`` broadcasts of its
WebSocket (ComfyUI executes one prompt at a time, and starts the next at once
while any is pending), over the wall time from the first backend getting work
to the last one running dry. Target: every backend busy 95 % of wall time or more.

    python -m bench.bench_runs_gpu_busy [--runs 300] [--workers 1] [--worker-runs 12] [--job 0.2]
                                        [--priority normal]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
from pathlib import Path

from grpc import aio

from bench.bench_runs_common import (
    QueueWatch,
    new_label,
    solid_output,
    submit_all,
    submit_request,
    union_seconds,
    wait_all_final,
)
from mediagen.cli.render import PRIORITY
from mediagen.stack.local import LocalStack, StackConfig
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc

BACKENDS = 4
TARGET = 0.95


async def run(
    stack: LocalStack, count: int, priority: gateway_pb2.RunPriority.ValueType
) -> tuple[int, list[list[tuple[float, float]]]]:
    label = new_label()
    requests = [submit_request(label, [solid_output()], priority) for _ in range(count)]
    workers = [process.pid for name, process in stack.processes.items() if name.startswith("worker-")]
    watches = [QueueWatch(url) for url in stack.comfyui_urls]
    for watch in watches:
        await watch.start()
    async with aio.insecure_channel(stack.gateway_address) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            await submit_all(stub, requests)
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        final = await wait_all_final(stub, label, count, within=60 + count)
    busy = [await watch.stop() for watch in watches]
    return sum(1 for status in final if status.state == gateway_pb2.RUN_STATE_SUCCEEDED), busy


def main() -> int:
    parser = argparse.ArgumentParser(description="backends kept busy by a backlog of durable runs")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--workers", type=int, default=1, help="worker gateways")
    parser.add_argument("--worker-runs", type=int, default=12, help="runs each worker executes at once")
    parser.add_argument("--job", type=float, default=0.2, help="seconds each job holds its backend")
    parser.add_argument("--priority", choices=("low", "normal", "high"), default="normal")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mediagen-bench-") as work:
        config = StackConfig(
            work_dir=Path(work),
            simulators=BACKENDS,
            simulator_args=("--node-delay", f"EmptyImage={args.job}"),
            gateway_env={"MEDIAGEN_GATEWAY_ROLE": "api"},
            gateway_workers=args.workers,
            worker_env={"MEDIAGEN_GATEWAY_WORKER_RUNS": str(args.worker_runs)},
        )
        with LocalStack(config) as stack:
            started = time.monotonic()
            succeeded, per_backend = asyncio.run(run(stack, args.runs, PRIORITY[args.priority]))
            elapsed = time.monotonic() - started
    every = [interval for intervals in per_backend for interval in intervals]
    low, high = min(start for start, _ in every), max(end for _, end in every)
    wall = high - low
    shares = [union_seconds(intervals, low, high) / wall for intervals in per_backend]
    idle_gaps = [len(intervals) - 1 for intervals in per_backend]
    print(
        f"runs: {succeeded}/{args.runs} {args.priority}-priority runs succeeded in {elapsed:.1f} s "
        f"({args.workers} worker(s), {args.worker_runs} runs at once each)"
    )
    print(
        f"ideal wall {args.runs * args.job / BACKENDS:.1f} s, actual {wall:.1f} s; "
        f"idle gaps per backend {idle_gaps}"
    )
    print(
        "busy share per backend: "
        + ", ".join(f"{share * 100:.1f} %" for share in shares)
        + f" (target >= {TARGET * 100:.0f} %: {'met' if min(shares) >= TARGET else 'NOT met'})"
    )
    return 0 if succeeded == args.runs and min(shares) >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
