"""What one small generation costs our control plane, in CPU seconds per job and process.

Two scenarios, each on a fresh stack with its own simulated backends (one
ComfyUI simulator process per backend, its save node delayed to stand in for
the GPU):

- ``gpu-bound``: 4 backends at 200 ms per job, 64 callers, 200 runs. The
  backends cap the rate at 20 runs/s; the question is how close we get.
- ``control-plane``: 8 backends at 10 ms per job, 64 callers, 200 runs. The
  backends could take 800 runs/s, so only our own CPU limits the rate.

CPU time is read from each process's own counters (user + system, via
psutil) between the first and the last measured run, so it counts the work
done whatever the wall clock or the other processes do; divided by the runs,
it is the cost per job. ``execution/wall`` sums each backend's reported
``Timings.execution`` over the wall time: above 1.0 the timings overlap,
which a backend that runs one job at a time cannot do. The README keeps the
figures of earlier runs, so a change reads as a ratio to them.

    python -m bench.bench_cost_per_job [--scenario gpu-bound control-plane] [--runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import grpc
import psutil
from grpc import aio

from bench.stats import percentile
from mediagen.ports import free_port
from mediagen.stack import parts
from mediagen.stack.local import LocalStack, StackConfig
from mediagen.stack.minio import LocalMinio
from mediagen.stack.process import ManagedProcess
from mediagen.stack.readiness import http_answers
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc, generator_pb2

SERVICES = ("gateway", "generator", "storage")
CONTROL_PLANE_TARGET_MS = 20.0
GENERATOR_TARGET_MS = 8.0
CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
"""A status's number as gRPC names it (``grpc.StatusCode`` is keyed by (number, name) pairs)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    backends: int
    job_seconds: float
    callers: int

    @property
    def ceiling_runs_per_s(self) -> float:
        return self.backends / self.job_seconds


SCENARIOS = {
    "gpu-bound": Scenario("gpu-bound", backends=4, job_seconds=0.2, callers=64),
    "control-plane": Scenario("control-plane", backends=8, job_seconds=0.01, callers=64),
}


@dataclass
class Tally:
    succeeded: int = 0
    failed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    execution_by_backend: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    jobs_by_backend: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    latencies: list[float] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Events the callers received, by kind: what the services sent, relayed and encoded per run."""


def small_image_request() -> gateway_pb2.GatewayGenerateRequest:
    params = {k: generator_pb2.ParameterValue(int_value=64) for k in ("width", "height")}
    workflow = generator_pb2.WorkflowSpec(template="solid_image", parameters=params)
    return gateway_pb2.GatewayGenerateRequest(outputs=[gateway_pb2.OutputSpec(workflow=workflow)])


async def one_run(stub: gateway_pb2_grpc.GatewayServiceAsyncStub, tally: Tally) -> None:
    started = time.perf_counter()
    backend = ""
    try:
        async for event in stub.Generate(small_image_request(), timeout=120):
            kind = event.WhichOneof("event")
            tally.events[kind or ""] += 1
            if kind == "output_accepted":
                backend = event.output_accepted.accepted.backend
            elif kind == "output_failed":
                tally.failed[CODE_NAMES.get(event.output_failed.status.code, "UNKNOWN")] += 1
            elif kind == "run_completed":
                for outcome in event.run_completed.outputs:
                    tally.execution_by_backend[backend] += (
                        outcome.timings.execution.ToTimedelta().total_seconds()
                    )
                if not event.run_completed.outputs_failed:
                    tally.succeeded += 1
                    tally.jobs_by_backend[backend] += 1
    except aio.AioRpcError as err:
        tally.failed[err.code().name] += 1
    tally.latencies.append(time.perf_counter() - started)


async def drive(address: str, runs: int, callers: int, tally: Tally) -> None:
    remaining = iter(range(runs))
    async with aio.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)

        async def caller() -> None:
            for _ in remaining:
                await one_run(stub, tally)

        await asyncio.gather(*(caller() for _ in range(callers)))


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    totals = {}
    for name, pid in pids.items():
        times = psutil.Process(pid).cpu_times()
        totals[name] = times.user + times.system
    return totals


def start_simulators(work: Path, scenario: Scenario) -> tuple[list[ManagedProcess], list[str]]:
    processes, urls = [], []
    for index in range(scenario.backends):
        port = free_port()
        argv = parts.simulator_argv(
            "127.0.0.1",
            port,
            work / f"comfyui-{index}",
            ("--node-delay", f"SaveImage={scenario.job_seconds}"),
        )
        processes.append(
            ManagedProcess(f"comfyui-{index}", argv, parts.base_env(), work / "logs" / f"comfyui-{index}.log")
        )
        urls.append(f"http://127.0.0.1:{port}")
    for process, url in zip(processes, urls, strict=True):
        process.wait_until(partial(http_answers, f"{url}/system_stats"), 60, "answering")
    return processes, urls


def run_scenario(scenario: Scenario, runs: int, warmup: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mediagen-bench-") as tmp:
        work = Path(tmp)
        minio = LocalMinio(work / "minio")
        simulators: list[ManagedProcess] = []
        try:
            endpoint = minio.start()
            simulators, urls = start_simulators(work, scenario)
            config = StackConfig(work_dir=work, minio=endpoint, comfyui_url=",".join(urls))
            with LocalStack(config) as stack:
                pids = {name: pid for name, pid in stack.pids().items() if name in SERVICES}
                assert minio.process is not None
                pids["minio"] = minio.process.pid
                for process in simulators:
                    pids[process.name] = process.pid
                asyncio.run(drive(stack.gateway_address, warmup, min(warmup, scenario.callers), Tally()))
                before = cpu_seconds(pids)
                tally = Tally()
                started = time.perf_counter()
                asyncio.run(drive(stack.gateway_address, runs, scenario.callers, tally))
                wall = time.perf_counter() - started
                after = cpu_seconds(pids)
        finally:
            for process in simulators:
                process.stop()
            minio.stop()
    report(scenario, runs, wall, tally, {name: after[name] - before[name] for name in before})


def report(scenario: Scenario, runs: int, wall: float, tally: Tally, cpu: dict[str, float]) -> None:
    rate = tally.succeeded / wall
    print(
        f"{scenario.name}: {scenario.backends} backends at {scenario.job_seconds * 1000:.0f} ms per job, "
        f"{scenario.callers} callers, {runs} runs in {wall:.1f} s"
    )
    failed = ", ".join(f"{code} {count}" for code, count in sorted(tally.failed.items())) or "none"
    print(
        f"  succeeded {tally.succeeded}/{runs}, failed: {failed}; {rate:.1f} runs/s "
        f"({rate / scenario.ceiling_runs_per_s:.2f} of the {scenario.ceiling_runs_per_s:.0f} runs/s ceiling)"
    )
    ms = [latency * 1000 for latency in tally.latencies]
    print(f"  run latency p50 {percentile(ms, 0.5):.0f} ms, p95 {percentile(ms, 0.95):.0f} ms")
    per_run = ", ".join(f"{kind} {count / runs:.1f}" for kind, count in sorted(tally.events.items()))
    print(f"  events per run: {per_run}")
    jobs = max(tally.succeeded, 1)
    per_job = {name: seconds / jobs * 1000 for name, seconds in cpu.items()}
    simulators = sum(v for k, v in per_job.items() if k.startswith("comfyui-"))
    control = sum(per_job[name] for name in SERVICES)
    verdict = "met" if control <= CONTROL_PLANE_TARGET_MS else "NOT met"
    print(
        "  CPU ms per job: "
        + ", ".join(f"{name} {per_job[name]:.1f}" for name in (*SERVICES, "minio"))
        + f", simulators {simulators:.1f}"
    )
    print(
        f"  control plane (gateway + generator + storage) {control:.1f} ms per job "
        f"(target <= {CONTROL_PLANE_TARGET_MS:.0f}: {verdict}); "
        f"generator {per_job['generator']:.1f} ms (target <= {GENERATOR_TARGET_MS:.0f})"
    )
    for backend in sorted(tally.execution_by_backend):
        busy = tally.jobs_by_backend[backend] * scenario.job_seconds
        print(
            f"  backend {backend or '?'}: {tally.jobs_by_backend[backend]} jobs, "
            f"execution/wall {tally.execution_by_backend[backend] / wall:.2f}, "
            f"node time/wall {busy / wall:.2f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description="control-plane CPU per small job")
    parser.add_argument("--scenario", nargs="+", choices=sorted(SCENARIOS), default=sorted(SCENARIOS))
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=16)
    args = parser.parse_args()
    for name in args.scenario:
        run_scenario(SCENARIOS[name], args.runs, args.warmup)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
