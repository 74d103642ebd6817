"""Watch latency: how much later a WatchRun client sees an event than a Generate caller does.

The event is ``media_stored``; its moment of production is the record's
``created_at``, stamped by storage when the object is complete, the same on
both paths. A Generate caller gets it through the gateway that stored it; a
WatchRun client gets it after the worker logged it in JetStream and the
gateway's ordered consumer relayed it. Runs alternate between the two paths
(one tiny image each) so drift on the machine affects both alike, and every
process is the deployed one. The event's own ``time`` (stamped by the worker
when it logged it) gives the log-to-watcher part alone. Target: p50 overhead
5 ms at most.

    python -m bench.bench_runs_watch_latency [--runs 40]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from grpc import aio

from bench.bench_runs_common import new_label, seconds_of, solid_output, submit_request
from bench.stats import percentile, summary_ms
from mediagen.stack.local import LocalStack, StackConfig
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc

if TYPE_CHECKING:
    from mediagen.v1.gateway_pb2_grpc import GatewayServiceAsyncStub as Stub

TARGET_MS = 5.0


async def through_generate(stub: Stub) -> float:
    """Seconds from storage's record to the Generate caller receiving media_stored."""
    request = gateway_pb2.GatewayGenerateRequest(outputs=[solid_output()])
    latency = None
    async for event in stub.Generate(request, timeout=60):
        if event.HasField("media_stored"):
            latency = time.time() - seconds_of(event.media_stored.record.created_at)
        if event.HasField("run_completed") and event.run_completed.outputs_failed:
            raise RuntimeError(f"run failed: {event.run_completed}")
    if latency is None:
        raise RuntimeError("no media_stored event")
    return latency


async def through_watch(stub: Stub, label: str) -> tuple[float, float]:
    """(record to watcher, log to watcher) for media_stored on a submitted run."""
    status = await stub.SubmitRun(submit_request(label, [solid_output()]), timeout=60)
    stored = logged = None
    request = gateway_pb2.WatchRunRequest(run_id=status.run_id)
    async for event in stub.WatchRun(request, timeout=60):
        if event.HasField("media_stored"):
            now = time.time()
            stored = now - seconds_of(event.media_stored.record.created_at)
            logged = now - seconds_of(event.time)
        if event.HasField("run_completed") and event.run_completed.state != gateway_pb2.RUN_STATE_SUCCEEDED:
            raise RuntimeError(f"run ended {event.run_completed.state}")
    if stored is None or logged is None:
        raise RuntimeError("no media_stored event")
    return stored, logged


async def measure(stack: LocalStack, runs: int, warmup: int = 3) -> tuple[list[float], ...]:
    label = new_label()
    direct: list[float] = []
    watched: list[float] = []
    relayed: list[float] = []
    async with aio.insecure_channel(stack.gateway_address) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        for i in range(warmup + runs):
            generate = await through_generate(stub)
            stored, logged = await through_watch(stub, label)
            if i >= warmup:
                direct.append(generate)
                watched.append(stored)
                relayed.append(logged)
    return direct, watched, relayed


def main() -> int:
    parser = argparse.ArgumentParser(description="WatchRun latency over a direct Generate stream")
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="mediagen-bench-") as work,
        LocalStack(StackConfig(work_dir=Path(work))) as stack,
    ):
        direct, watched, relayed = asyncio.run(measure(stack, args.runs))
    overhead_ms = (percentile(watched, 0.5) - percentile(direct, 0.5)) * 1000
    print(f"media_stored on the Generate stream (record -> caller): {summary_ms(direct)}")
    print(f"media_stored on WatchRun (record -> watcher):           {summary_ms(watched)}")
    print(f"  of which logged event -> watcher:                    {summary_ms(relayed)}")
    print(
        f"watch overhead p50: {overhead_ms:+.2f} ms "
        f"(target +{TARGET_MS:.0f} ms: {'met' if overhead_ms <= TARGET_MS else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
