"""Completion-notice latency: push (the generator's shared WebSocket) vs a 2 s /history poller.

N trivial jobs (``solid_image`` 8x8) run through an in-process generator against an in-process
ComfyUI simulator. The simulator's history write is timestamped by wrapping its queue's
``task_done`` from here (the moment ComfyUI considers the prompt finished); the generator's
notice is the TRANSFERRING progress event the caller receives (history fetched, download about
to start), and the ``completed`` event is reported too. The baseline submits the same graph
directly and polls ``/history/{id}`` every 2 s (first poll at a random phase), as older wrappers
did, in the same run.

    python -m bench.bench_completion_latency [--jobs 50] [--poll 2.0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from comfyui_sim import SimulatorConfig, start_simulator
from comfyui_sim.server import SimulatorHandle
from generator_service.app import build_spec
from generator_service.settings import GeneratorSettings
from mediagen.scaffold import start_server
from mediagen.scaffold.channels import open_channel
from mediagen.v1 import common_pb2, generator_pb2, generator_pb2_grpc

GRAPH: dict[str, dict[str, Any]] = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "bench"}},
}


def record_completions(sim: SimulatorHandle) -> dict[str, float]:
    finished: dict[str, float] = {}
    queue = sim.executor.queue
    original = queue.task_done

    def task_done(index: int, result: dict[str, Any], status: dict[str, Any]) -> None:
        prompt_id = queue.running[index][1]
        original(index, result, status)
        finished[prompt_id] = time.perf_counter()

    queue.task_done = task_done  # type: ignore[method-assign]  # wrapped on purpose to timestamp it
    return finished


async def push_run(
    stub: generator_pb2_grpc.GeneratorServiceAsyncStub, finished: dict[str, float], jobs: int
) -> tuple[list[float], list[float]]:
    notice, completed = [], []
    for i in range(jobs):
        request = generator_pb2.GenerateRequest(workflow=generator_pb2.WorkflowSpec(template="solid_image"))
        request.workflow.parameters["color"].int_value = i
        request.workflow.parameters["width"].int_value = 8
        request.workflow.parameters["height"].int_value = 8
        prompt_id, noticed = "", 0.0
        async for event in stub.Generate(request, timeout=30):
            now = time.perf_counter()
            if event.HasField("accepted"):
                prompt_id = event.accepted.prompt_id
            elif (
                event.HasField("progress") and event.progress.stage == common_pb2.PROGRESS_STAGE_TRANSFERRING
            ):
                noticed = now
            elif event.HasField("completed"):
                notice.append((noticed - finished[prompt_id]) * 1000)
                completed.append((now - finished[prompt_id]) * 1000)
    return notice, completed


async def poll_run(url: str, finished: dict[str, float], jobs: int, period: float) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(base_url=url) as http:
        for i in range(jobs):
            graph = {**GRAPH, "1": {**GRAPH["1"], "inputs": {**GRAPH["1"]["inputs"], "color": 1000 + i}}}
            prompt_id = str(uuid.uuid4())
            await http.post("/prompt", json={"prompt": graph, "client_id": "poller", "prompt_id": prompt_id})
            await asyncio.sleep(random.uniform(0, period))  # a poller's phase is unrelated to the job
            while not (await http.get(f"/history/{prompt_id}")).json():  # noqa: ASYNC110 - polling is the baseline
                await asyncio.sleep(period)
            latencies.append((time.perf_counter() - finished[prompt_id]) * 1000)
    return latencies


def summary(name: str, values: list[float]) -> float:
    p50 = statistics.median(values)
    p95 = sorted(values)[max(0, int(len(values) * 0.95) - 1)]
    print(f"{name:<34} p50 {p50:9.2f} ms   p95 {p95:9.2f} ms   (n={len(values)})")
    return p50


async def main(jobs: int, period: float) -> None:
    with tempfile.TemporaryDirectory() as data:
        sim = await start_simulator(SimulatorConfig(port=0, data_dir=Path(data)))
        finished = record_completions(sim)
        settings = GeneratorSettings(
            comfyui_urls=sim.url, log_level="WARNING", state_dir=Path(data) / "generator-state"
        )
        server = await start_server(await build_spec(settings), settings)
        channel = open_channel(server.address)
        try:
            stub = generator_pb2_grpc.GeneratorServiceStub(channel)
            notice, completed = await push_run(stub, finished, jobs)
            polled = await poll_run(sim.url, finished, max(jobs // 5, 5), period)
        finally:
            await channel.close()
            await server.stop(1.0)
            await sim.stop()
    push = summary("generator: completion noticed", notice)
    summary("generator: completed event (+PNG)", completed)
    poll = summary(f"baseline: /history poll every {period:g}s", polled)
    print(f"ratio baseline/push (p50): {poll / push:.0f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--poll", type=float, default=2.0)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.poll))
