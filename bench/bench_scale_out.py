"""Scale-out: generations per second with 1, 2 and 4 generator replicas behind 2 gateways.

Each generator replica has a ComfyUI simulator of its own taking 200 ms per job
(``--node-delay SaveImage=0.2``), as a GPU each; all replicas share one NATS (their journal)
and one storage service on one MinIO. Two gateways reach the generators through one
multi-address target (``ipv4:a,b,...``, what a ``dns:///`` name of a headless Service resolves
to), round robin. The same callers, split between the two gateways, keep ``--callers``
Generate calls (one 8x8 image each) in flight for ``--seconds`` after a warm-up; a run is
one call that stored its image.

Reported per replica count: runs/s, the share of calls each gateway answered (read from its
own ``grpc_server_handled_total`` metric, not from the callers) and the share of jobs each
ComfyUI ran. Targets: 4 replicas at least 3.5x the runs/s of 1; no gateway above 60 % of the
calls. Every part is its own process on this machine, so on a machine with few cores the
services compete with each other for CPU: the ratio is a lower bound of what separate
machines would give.

    python -m bench.bench_scale_out [--replicas 1 2 4] [--seconds 12] [--callers 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from grpc import aio
from prometheus_client.parser import text_string_to_metric_families

from bench.bench_e2e_overhead import through_gateway
from mediagen.ports import free_port
from mediagen.stack import parts
from mediagen.stack.minio import LocalMinio, MinioEndpoint
from mediagen.stack.nats import LocalNats, NatsEndpoint
from mediagen.stack.process import ManagedProcess
from mediagen.stack.readiness import grpc_serving, http_answers
from mediagen.v1 import gateway_pb2_grpc

HOST = "127.0.0.1"
JOB_SECONDS = 0.2
GATEWAYS = 2
TARGET_RATIO = 3.5
MAX_GATEWAY_SHARE = 0.60
START_TIMEOUT = 60.0
BUCKET = "scale-out"


@dataclass
class Result:
    replicas: int
    runs: int
    seconds: float
    failed: int
    gateway_calls: list[int]
    comfyui_jobs: list[int]

    @property
    def rate(self) -> float:
        return self.runs / self.seconds


@dataclass
class Deployment:
    """Simulators, generators and gateways of one replica count (storage and NATS are shared)."""

    work: Path
    processes: list[ManagedProcess] = field(default_factory=list)
    simulators: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    gateway_metrics: list[str] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, env, self.work / f"{name}.log")
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop(5.0)


def _serving(process: ManagedProcess, address: str) -> None:
    process.wait_until(lambda: grpc_serving(address), START_TIMEOUT, "SERVING")


def deploy(work: Path, replicas: int, storage: str, nats: NatsEndpoint, callers: int) -> Deployment:
    deployment = Deployment(work)
    try:
        generators = []
        for i in range(replicas):
            port = free_port(HOST)
            url = f"http://{HOST}:{port}"
            argv = parts.simulator_argv(
                HOST, port, work / f"comfyui-{i}", ("--node-delay", f"SaveImage={JOB_SECONDS}")
            )
            sim = deployment.start(f"comfyui-{i}", argv, parts.base_env())
            sim.wait_until(functools.partial(http_answers, f"{url}/system_stats"), START_TIMEOUT, "answering")
            deployment.simulators.append(url)
            gen_port = free_port(HOST)
            env = {
                **parts.base_env(),
                **parts.generator_env(
                    gen_port,
                    url,
                    "",
                    {
                        "MEDIAGEN_GENERATOR_HOST": HOST,
                        "MEDIAGEN_GENERATOR_NATS_URL": nats.url,
                        "MEDIAGEN_GENERATOR_NATS_PREFIX": f"SCALE{replicas}",
                        # All callers may land on one replica: never refuse for a full queue.
                        "MEDIAGEN_GENERATOR_MAX_QUEUE_PER_BACKEND": str(callers + 4),
                    },
                ),
            }
            process = deployment.start(f"generator-{i}", parts.service_argv("generator_service"), env)
            generators.append((process, f"{HOST}:{gen_port}"))
        for process, address in generators:
            _serving(process, address)
        target = "ipv4:" + ",".join(address for _, address in generators)
        for i in range(GATEWAYS):
            port, metrics = free_port(HOST), free_port(HOST)
            overrides = {
                "MEDIAGEN_GATEWAY_HOST": HOST,
                "MEDIAGEN_GATEWAY_METRICS_PORT": str(metrics),
                "MEDIAGEN_GATEWAY_MAX_CONCURRENCY": "64",
            }
            env = {**parts.base_env(), **parts.gateway_env(port, target, storage, "", overrides)}
            process = deployment.start(f"gateway-{i}", parts.service_argv("gateway"), env)
            _serving(process, f"{HOST}:{port}")
            deployment.gateways.append(f"{HOST}:{port}")
            deployment.gateway_metrics.append(f"http://{HOST}:{metrics}/metrics")
    except BaseException:
        deployment.stop()
        raise
    return deployment


async def generate_calls(http: httpx.AsyncClient, url: str) -> int:
    """Generate calls this gateway answered OK, by its own metrics."""
    text = (await http.get(url)).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "grpc_server_handled_total"
                and labels.get("grpc_method") == "Generate"
                and labels.get("grpc_code") == "OK"
            ):
                total += sample.value
    return int(total)


async def jobs_run(http: httpx.AsyncClient, url: str) -> int:
    return int((await http.get(f"{url}/sim/state")).json()["prompts_run"])


async def measure(
    deployment: Deployment, replicas: int, callers: int, seconds: float, warmup: float
) -> Result:
    channels = [aio.insecure_channel(address) for address in deployment.gateways]
    stubs = [gateway_pb2_grpc.GatewayServiceStub(channel) for channel in channels]
    window: dict[str, float] = {}
    done, failed = 0, 0

    async def caller(index: int) -> None:
        nonlocal done, failed
        stub = stubs[index % len(stubs)]
        while time.monotonic() < window["end"]:
            try:
                await through_gateway(stub, 8)
            except Exception:  # noqa: BLE001 - counted, the load goes on
                if time.monotonic() >= window["start"]:
                    failed += 1
                continue
            if window["start"] <= time.monotonic() < window["end"]:
                done += 1

    async with httpx.AsyncClient(timeout=10) as http:
        try:
            now = time.monotonic()
            window.update(start=now + warmup, end=now + warmup + seconds)
            tasks = [asyncio.ensure_future(caller(i)) for i in range(callers)]
            await asyncio.sleep(warmup)
            calls_before = [await generate_calls(http, url) for url in deployment.gateway_metrics]
            jobs_before = [await jobs_run(http, url) for url in deployment.simulators]
            await asyncio.sleep(seconds)
            calls_after = [await generate_calls(http, url) for url in deployment.gateway_metrics]
            jobs_after = [await jobs_run(http, url) for url in deployment.simulators]
            await asyncio.gather(*tasks)
        finally:
            for channel in channels:
                await channel.close()
    return Result(
        replicas,
        done,
        seconds,
        failed,
        [a - b for a, b in zip(calls_after, calls_before, strict=True)],
        [a - b for a, b in zip(jobs_after, jobs_before, strict=True)],
    )


def shares(counts: list[int]) -> str:
    total = sum(counts) or 1
    return " / ".join(f"{100 * count / total:.0f}%" for count in counts)


@contextlib.contextmanager
def shared_parts(work: Path) -> Iterator[tuple[str, NatsEndpoint, MinioEndpoint]]:
    """NATS, MinIO and one storage service, for every replica count."""
    nats_server = LocalNats(work / "nats", host=HOST)
    minio_server = LocalMinio(work / "minio", host=HOST)
    storage: ManagedProcess | None = None
    try:
        nats = nats_server.start(START_TIMEOUT)
        minio = minio_server.start()
        port = free_port(HOST)
        env = {
            **parts.base_env(),
            **parts.storage_env(port, minio, BUCKET, {"MEDIAGEN_STORAGE_HOST": HOST}),
        }
        storage = ManagedProcess("storage", parts.service_argv("storage_service"), env, work / "storage.log")
        _serving(storage, f"{HOST}:{port}")
        yield f"{HOST}:{port}", nats, minio
    finally:
        if storage is not None:
            storage.stop(5.0)
        minio_server.stop()
        nats_server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description="runs/s with 1, 2 and 4 generator replicas behind 2 gateways"
    )
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=12.0, help="measured window per replica count")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--callers", type=int, default=16, help="calls in flight, split between the gateways")
    args = parser.parse_args()
    results: list[Result] = []
    print(
        f"{os.cpu_count()} CPU(s), every part a process on this machine; {JOB_SECONDS * 1000:.0f} ms per job"
    )
    with tempfile.TemporaryDirectory(prefix="mediagen-scale-") as tmp, shared_parts(Path(tmp)) as shared:
        storage, nats, _ = shared
        for replicas in args.replicas:
            work = Path(tmp) / f"replicas-{replicas}"
            work.mkdir()
            deployment = deploy(work, replicas, storage, nats, args.callers)
            try:
                result = asyncio.run(measure(deployment, replicas, args.callers, args.seconds, args.warmup))
            finally:
                deployment.stop()
            results.append(result)
            ceiling = replicas / JOB_SECONDS
            print(
                f"{replicas} generator replica(s): {result.rate:.1f} runs/s "
                f"({result.runs} in {result.seconds:.0f} s, {result.failed} failed, ceiling {ceiling:.0f}/s) "
                f"gateways {shares(result.gateway_calls)} of {sum(result.gateway_calls)} calls; "
                f"ComfyUIs {shares(result.comfyui_jobs)}",
                flush=True,
            )
    ok = True
    by_count = {r.replicas: r for r in results}
    if 1 in by_count and by_count[1].rate > 0:
        for r in results:
            if r.replicas != 1:
                print(f"{r.replicas} vs 1 replica: {r.rate / by_count[1].rate:.2f}x")
        if 4 in by_count:
            ratio = by_count[4].rate / by_count[1].rate
            met = ratio >= TARGET_RATIO
            ok &= met
            print(f"target >= {TARGET_RATIO}x at 4 replicas: {'met' if met else 'NOT met'} ({ratio:.2f}x)")
    for r in results:
        total = sum(r.gateway_calls) or 1
        top = max(r.gateway_calls) / total
        met = top <= MAX_GATEWAY_SHARE
        ok &= met
        print(
            f"{r.replicas} replica(s): busiest gateway {100 * top:.0f}% of calls "
            f"(target <= {100 * MAX_GATEWAY_SHARE:.0f}%: {'met' if met else 'NOT met'})"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
