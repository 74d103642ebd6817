"""End-to-end overhead of the services over the minimal one-process script.

Both paths run against the same ComfyUI simulator and the same MinIO, with
every service in its own process as deployed; runs alternate between the two
so drift on the machine affects both alike. Target: +15 ms p50 at most.

With ``--tracing`` a second stack runs with tracing on (the standard ``OTEL_*`` variables,
exporting by OTLP to a receiver in this process) on the same MinIO, and its runs alternate
with the other two: what tracing costs is its p50 over the untraced stack's. Target: +2 ms.

    python -m bench.bench_e2e_overhead [--runs 40] [--size 64] [--tracing]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path

import psutil
from grpc import aio

from bench.baseline import DirectPipeline
from bench.memory import peak_rss_mib
from bench.otlp_sink import SpanSink
from bench.stats import percentile, summary_ms
from mediagen.stack.local import LocalStack, StackConfig
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc, generator_pb2

TARGET_MS = 15.0
TRACING_TARGET_MS = 2.0


def gateway_request(size: int) -> gateway_pb2.GatewayGenerateRequest:
    params = {k: generator_pb2.ParameterValue(int_value=size) for k in ("width", "height")}
    workflow = generator_pb2.WorkflowSpec(template="solid_image", parameters=params)
    return gateway_pb2.GatewayGenerateRequest(outputs=[gateway_pb2.OutputSpec(workflow=workflow)])


async def through_gateway(stub: gateway_pb2_grpc.GatewayServiceAsyncStub, size: int) -> None:
    stored = 0
    async for event in stub.Generate(gateway_request(size), timeout=60):
        if event.HasField("media_stored"):
            stored += 1
        if event.HasField("run_completed") and event.run_completed.outputs_failed:
            raise RuntimeError(f"run failed: {event.run_completed}")
    if stored != 1:
        raise RuntimeError(f"expected one stored media, got {stored}")


class ServiceCpu:
    """CPU seconds the gateway, generator and storage processes of one stack used meanwhile."""

    def __init__(self, stack: LocalStack) -> None:
        pids = stack.pids()
        self._processes = [psutil.Process(pids[name]) for name in ("gateway", "generator", "storage")]
        self.seconds = 0.0

    def _now(self) -> float:
        return sum(sum(process.cpu_times()[:2]) for process in self._processes)

    def start(self) -> None:
        self.seconds = -self._now()

    def stop(self) -> None:
        self.seconds += self._now()


async def measure(
    stack: LocalStack,
    runs: int,
    size: int,
    warmup: int = 3,
    traced: LocalStack | None = None,
    cpu: Sequence[ServiceCpu] = (),
) -> tuple[list[float], list[float], list[float]]:
    """Durations of the script, the stack and (given) the traced stack, runs alternating."""
    assert stack.minio is not None
    direct = DirectPipeline(stack.comfyui_url, stack.minio.client(), stack.bucket)
    await direct.open()
    channel = aio.insecure_channel(stack.gateway_address)
    traced_channel = aio.insecure_channel(traced.gateway_address) if traced else None
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    traced_stub = gateway_pb2_grpc.GatewayServiceStub(traced_channel) if traced_channel else None
    baseline: list[float] = []
    services: list[float] = []
    with_tracing: list[float] = []

    async def timed(path: Awaitable[object], into: list[float], keep: bool) -> None:
        started = time.perf_counter()
        await path
        if keep:
            into.append(time.perf_counter() - started)

    try:
        for i in range(warmup + runs):
            if i == warmup:
                for measured in cpu:
                    measured.start()
            keep = i >= warmup
            await timed(direct.run_once(size, size), baseline, keep)
            # The two stacks take turns going first, so neither always runs on a warmer machine.
            pair = [(stub, services), (traced_stub, with_tracing)]
            for which, into in pair if i % 2 == 0 else reversed(pair):
                if which is not None:
                    await timed(through_gateway(which, size), into, keep)
        for measured in cpu:
            measured.stop()
    finally:
        await direct.close()
        await channel.close()
        if traced_channel is not None:
            await traced_channel.close()
    return baseline, services, with_tracing


def main() -> int:
    parser = argparse.ArgumentParser(description="end-to-end overhead over a one-process script")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--size", type=int, default=64, help="image width and height")
    parser.add_argument("--tracing", action="store_true", help="also measure a stack with tracing on")
    args = parser.parse_args()
    with contextlib.ExitStack() as resources:
        work = Path(resources.enter_context(tempfile.TemporaryDirectory(prefix="mediagen-bench-")))
        stack = resources.enter_context(LocalStack(StackConfig(work_dir=work / "plain")))
        traced = None
        if args.tracing:
            sink = SpanSink()
            resources.callback(sink.stop)
            otel = sink.env(batch_delay_ms=None)
            config = StackConfig(
                work_dir=work / "traced",
                minio=stack.minio,
                gateway_env=otel,
                generator_env=otel,
                storage_env=otel,
            )
            traced = resources.enter_context(LocalStack(config))
        cpu = [ServiceCpu(stack)] + ([ServiceCpu(traced)] if traced else [])
        baseline, services, with_tracing = asyncio.run(
            measure(stack, args.runs, args.size, traced=traced, cpu=cpu)
        )
        memory = peak_rss_mib(stack.pids())
    overhead_ms = (percentile(services, 0.5) - percentile(baseline, 0.5)) * 1000
    print(f"baseline (one-process script): {summary_ms(baseline)}")
    print(f"through gateway→generator→storage: {summary_ms(services)}")
    print(
        f"overhead p50: {overhead_ms:+.2f} ms (target +{TARGET_MS:.0f} ms: "
        f"{'met' if overhead_ms <= TARGET_MS else 'NOT met'}); "
        f"ratio p50 {percentile(services, 0.5) / percentile(baseline, 0.5):.2f}x"
    )
    if with_tracing:
        tracing_ms = (percentile(with_tracing, 0.5) - percentile(services, 0.5)) * 1000
        plain_cpu, traced_cpu = (measured.seconds / args.runs * 1000 for measured in cpu)
        print(f"through the stack with tracing on: {summary_ms(with_tracing)}")
        print(
            f"service CPU per run (gateway+generator+storage): {plain_cpu:.2f} ms untraced, "
            f"{traced_cpu:.2f} ms traced ({traced_cpu - plain_cpu:+.2f} ms)"
        )
        print(
            f"tracing cost p50: {tracing_ms:+.2f} ms (target +{TRACING_TARGET_MS:.0f} ms: "
            f"{'met' if tracing_ms <= TRACING_TARGET_MS else 'NOT met'}); spans received: {len(sink.spans)}"
        )
    print(f"peak RSS MiB: {memory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
