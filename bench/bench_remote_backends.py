"""Remote backend kinds: the generator's overhead, and a 429 storm.

Overhead: N jobs per kind through an in-process generator against the in-process simulator,
interleaved with the same exchange made by a minimal direct client (Images API: one POST, body
read and ``b64_json`` decoded; predictions: one POST with ``Prefer: wait``, then the output
downloaded). The simulators cache their renders, so both arms measure the exchange, not drawing.
Target: p50(generator) - p50(direct) <= 5 ms per kind.

Storm: the simulators refuse 50% of requests with 429 (``retry-after`` 0.7 s); J concurrent jobs
per kind with a 2.5 s gRPC deadline (so some jobs run out of retries). Every job must succeed or
end RESOURCE_EXHAUSTED, and no request may reach a simulator after the call's deadline (launch +
2.5 s, which the generator's own deadline is inside of; the report shows the latest request).

    python -m bench.bench_remote_backends [--jobs 60] [--storm 20]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx

from generator_service.app import build_spec
from generator_service.settings import GeneratorSettings
from images_api_sim import ImagesSimConfig, start_images_sim
from mediagen.scaffold import start_server
from mediagen.scaffold.channels import open_channel
from mediagen.v1 import generator_pb2, generator_pb2_grpc
from predictions_sim import PredictionsSimConfig, start_predictions_sim

IMAGES_KEY, PREDICTIONS_KEY = "sk-bench", "r8_bench"
TARGET_MS = 5.0


def _request(template: str, timeout: float = 0, **params: Any) -> generator_pb2.GenerateRequest:
    request = generator_pb2.GenerateRequest(workflow=generator_pb2.WorkflowSpec(template=template))
    for name, value in params.items():
        target = request.workflow.parameters[name]
        if isinstance(value, int):
            target.int_value = value
        else:
            target.string_value = str(value)
    if timeout:
        request.timeout.FromNanoseconds(int(timeout * 1e9))
    return request


async def _through_generator(
    stub: generator_pb2_grpc.GeneratorServiceAsyncStub, request: generator_pb2.GenerateRequest
) -> float:
    started = time.perf_counter()
    async for _ in stub.Generate(request, timeout=60):
        pass
    return time.perf_counter() - started


async def _direct_images(http: httpx.AsyncClient, url: str) -> float:
    started = time.perf_counter()
    body = {"model": "gpt-image-1", "prompt": "bench", "n": 1, "size": "1024x1024", "quality": "low"}
    body |= {"background": "auto", "output_format": "png"}
    response = await http.post(
        f"{url}/v1/images/generations", json=body, headers={"Authorization": f"Bearer {IMAGES_KEY}"}
    )
    for item in response.json()["data"]:
        base64.b64decode(item["b64_json"])
    return time.perf_counter() - started


async def _direct_predictions(http: httpx.AsyncClient, url: str) -> float:
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {PREDICTIONS_KEY}", "Prefer": "wait=5"}
    body = {"input": {"prompt": "bench", "seed": 1, "megapixels": "0.25", "go_fast": True}}
    prediction = (
        await http.post(
            f"{url}/v1/models/black-forest-labs/flux-schnell/predictions", json=body, headers=headers
        )
    ).json()
    for output in prediction["output"]:
        async with http.stream("GET", output) as download:
            async for _ in download.aiter_raw():
                pass
    return time.perf_counter() - started


def _ms(values: list[float]) -> str:
    ordered = sorted(v * 1000 for v in values)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"p50 {statistics.median(ordered):7.2f} ms  p95 {p95:7.2f} ms"


async def overhead(
    stub: generator_pb2_grpc.GeneratorServiceAsyncStub, images: str, predictions: str, jobs: int
) -> bool:
    ok = True
    async with httpx.AsyncClient(timeout=60) as http:
        arms: dict[str, tuple[generator_pb2.GenerateRequest, Callable[[], Awaitable[float]]]] = {
            "images_api": (
                _request("gpt_image", prompt="bench", size="1024x1024"),
                lambda: _direct_images(http, images),
            ),
            "predictions": (
                _request("flux_schnell", prompt="bench", seed=1, megapixels="0.25"),
                lambda: _direct_predictions(http, predictions),
            ),
        }
        for kind, (request, direct) in arms.items():
            for _ in range(3):  # warm connections and the simulators' render caches
                await _through_generator(stub, request)
                await direct()
            through, plain = [], []
            for _ in range(jobs):
                through.append(await _through_generator(stub, request))
                plain.append(await direct())
            extra = (statistics.median(through) - statistics.median(plain)) * 1000
            ok &= extra <= TARGET_MS
            verdict = "ok" if extra <= TARGET_MS else "MISSED"
            print(
                f"{kind:<12} generator {_ms(through)}   direct {_ms(plain)}   "
                f"overhead p50 {extra:+.2f} ms (target <= {TARGET_MS:g} ms) {verdict}"
            )
    return ok


async def storm(
    stub: generator_pb2_grpc.GeneratorServiceAsyncStub, sims: dict[str, Any], jobs: int, limit: float
) -> bool:
    ok = True
    for sim in sims.values():
        sim.faults.rate_limit_ratio, sim.faults.retry_after_s = 0.5, 0.7
    for kind, template, params in (
        ("images_api", "gpt_image", {}),
        ("predictions", "flux_schnell", {"megapixels": "0.25"}),
    ):
        sim = sims[kind]
        sim.log.clear()
        requests = [_request(template, 0, prompt=f"storm {i}", **params) for i in range(jobs)]
        launched = time.time()
        outcomes = await asyncio.gather(*(_outcome(stub, r, limit) for r in requests))
        counts = Counter(outcomes)
        latest = max(
            (entry.at for entry in sim.log if entry.path.endswith(("generations", "predictions"))),
            default=launched,
        )
        late = latest - (launched + limit)
        good = set(counts) <= {"OK", "RESOURCE_EXHAUSTED"} and late <= 0
        ok &= good
        verdict = "ok" if good else "MISSED"
        print(
            f"{kind:<12} 429 storm: {dict(counts)}; {len(sim.log)} requests; "
            f"latest request {late:+.3f} s from the deadline {verdict}"
        )
    return ok


async def _outcome(
    stub: generator_pb2_grpc.GeneratorServiceAsyncStub, request: generator_pb2.GenerateRequest, limit: float
) -> str:
    try:
        async for _ in stub.Generate(request, timeout=limit):
            pass
    except grpc.aio.AioRpcError as err:
        return err.code().name
    return "OK"


async def main(jobs: int, storm_jobs: int) -> int:
    os.environ["MEDIAGEN_BENCH_IMAGES_KEY"], os.environ["MEDIAGEN_BENCH_PREDICTIONS_KEY"] = (
        IMAGES_KEY,
        PREDICTIONS_KEY,
    )
    images = await start_images_sim(ImagesSimConfig(api_key=IMAGES_KEY))
    predictions = await start_predictions_sim(PredictionsSimConfig(api_token=PREDICTIONS_KEY))
    predictions.faults.step_delay_s = 0.0
    with tempfile.TemporaryDirectory() as state:
        settings = GeneratorSettings(
            log_level="WARNING",
            state_dir=Path(state),
            backends=[
                {
                    "kind": "images_api",
                    "url": images.url,
                    "key_env": "MEDIAGEN_BENCH_IMAGES_KEY",
                    "max_concurrency": 64,
                },
                {
                    "kind": "predictions",
                    "url": predictions.url,
                    "key_env": "MEDIAGEN_BENCH_PREDICTIONS_KEY",
                    "max_concurrency": 64,
                    "poll_max": 0.5,
                },
            ],
        )
        server = await start_server(await build_spec(settings), settings)
        channel = open_channel(server.address)
        try:
            stub = generator_pb2_grpc.GeneratorServiceStub(channel)
            ok = await overhead(stub, images.url, predictions.url, jobs)
            ok &= await storm(stub, {"images_api": images, "predictions": predictions}, storm_jobs, 2.5)
        finally:
            await channel.close()
            await server.stop(1.0)
            await images.stop()
            await predictions.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--storm", type=int, default=20)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.jobs, args.storm)))
