"""Large media through the whole stack: throughput and every service's peak memory.

The simulator writes an incompressible PNG of the requested size; the gateway
pipes it from the generator into storage and MinIO. The baseline is one
direct ``put_object`` of the same file into the same MinIO, measured in the
same run. Targets: throughput at least 70 % of the baseline, and every
service's peak RSS at most 128 MiB whatever the size. Each service's CPU
seconds per GiB transferred are printed too: on a shared machine the
throughput follows whatever else the cores are doing, the work done per byte
much less so.

    python -m bench.bench_large_media [--size-mib 512 2048]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from grpc import aio

from bench.bench_cost_per_job import cpu_seconds
from bench.memory import MiB, peak_rss_mib
from mediagen.stack.local import LocalStack, StackConfig
from mediagen.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc, generator_pb2

THROUGHPUT_TARGET = 0.70
RSS_TARGET_MIB = 128.0
SERVICES = ("gateway", "generator", "storage")


def large_request(size_bytes: int) -> gateway_pb2.GatewayGenerateRequest:
    workflow = generator_pb2.WorkflowSpec(
        template="large_image",
        parameters={"size_bytes": generator_pb2.ParameterValue(int_value=size_bytes)},
    )
    output = gateway_pb2.OutputSpec(workflow=workflow)
    output.timeout.FromSeconds(1800)
    return gateway_pb2.GatewayGenerateRequest(outputs=[output])


async def through_stack(
    address: str, size_bytes: int, pids: dict[str, int]
) -> tuple[float, int, dict[str, float]]:
    """(seconds spent transferring, stored size, CPU seconds each service spent meanwhile)."""
    transfer_started = 0.0
    stored_size, transfer = 0, 0.0
    cpu_before: dict[str, float] = {}
    cpu_spent: dict[str, float] = {}
    async with aio.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        async for event in stub.Generate(large_request(size_bytes), timeout=3600):
            kind = event.WhichOneof("event")
            if kind == "output_progress" and not transfer_started:
                if event.output_progress.progress.stage == common_pb2.PROGRESS_STAGE_TRANSFERRING:
                    transfer_started = time.perf_counter()
                    cpu_before = cpu_seconds(pids)
            elif kind == "media_stored":
                transfer = time.perf_counter() - transfer_started if transfer_started else 0.0
                cpu_after = cpu_seconds(pids)
                cpu_spent = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
                stored_size = event.media_stored.record.descriptor.size_bytes
            elif kind == "output_failed":
                raise RuntimeError(f"output failed: {event.output_failed.status.message}")
            elif kind == "run_completed" and event.run_completed.timings.transfer.ToNanoseconds():
                transfer = event.run_completed.timings.transfer.ToNanoseconds() / 1e9
    return transfer, stored_size, cpu_spent


def direct_put(stack: LocalStack, path: Path, repeats: int = 3) -> float:
    """Median seconds of ``repeats`` direct puts: one put swings too much to be a baseline."""
    assert stack.minio is not None
    client = stack.minio.client()
    times = []
    for attempt in range(repeats):
        started = time.perf_counter()
        client.fput_object(
            stack.bucket, f"baseline/{attempt}-{path.name}", str(path), content_type="image/png"
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def largest_output(root: Path) -> Path:
    return max((p for p in root.rglob("*.png") if p.is_file()), key=lambda p: p.stat().st_size)


def run_size(size_mib: int) -> dict[str, object]:
    with (
        tempfile.TemporaryDirectory(prefix="mediagen-bench-") as work,
        LocalStack(StackConfig(work_dir=Path(work))) as stack,
    ):
        services = {k: v for k, v in stack.pids().items() if k in SERVICES}
        transfer, stored, cpu = asyncio.run(through_stack(stack.gateway_address, size_mib * MiB, services))
        baseline = direct_put(stack, largest_output(stack.simulator_data_dir / "output"))
        memory = peak_rss_mib(services)
    stack_rate = stored / MiB / transfer
    base_rate = stored / MiB / baseline
    return {
        "size_mib": size_mib,
        "stack_mib_s": stack_rate,
        "direct_mib_s": base_rate,
        "ratio": stack_rate / base_rate,
        "peak_rss_mib": memory,
        "cpu_s_per_gib": {name: round(spent * 1024 * MiB / stored, 2) for name, spent in cpu.items()},
    }


def report(result: dict[str, object]) -> None:
    ratio = float(result["ratio"])  # type: ignore[arg-type]
    memory: dict[str, float] = result["peak_rss_mib"]  # type: ignore[assignment]
    worst = max(memory.values())
    print(
        f"{result['size_mib']} MiB: stack {result['stack_mib_s']:.1f} MiB/s, "
        f"direct put_object (median of 3) {result['direct_mib_s']:.1f} MiB/s, ratio {ratio:.2f} "
        f"(target >= {THROUGHPUT_TARGET:.2f}: {'met' if ratio >= THROUGHPUT_TARGET else 'NOT met'})"
    )
    print(
        f"  peak RSS MiB {memory} (target <= {RSS_TARGET_MIB:.0f}: "
        f"{'met' if worst <= RSS_TARGET_MIB else 'NOT met'})"
    )
    load = os.getloadavg()[0]
    print(f"  CPU seconds per GiB transferred {result['cpu_s_per_gib']} (load average {load:.1f})")


def main() -> int:
    parser = argparse.ArgumentParser(description="large media throughput and peak memory")
    parser.add_argument("--size-mib", type=int, nargs="+", default=[512, 2048])
    for size in parser.parse_args().size_mib:
        report(run_size(size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
