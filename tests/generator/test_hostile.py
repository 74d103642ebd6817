"""Hostile or broken input: nothing is left running, and nothing of the backend leaks out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import httpx

from generator_service.templates import PACKAGED_DIR
from mediagen.scaffold.channels import open_channel
from mediagen.v1 import generator_pb2_grpc
from tests.generator.support import run, template_request, wait_until

HALF_VALID = {
    "description": "one valid output and one that ComfyUI refuses",
    "media_types": ["image"],
    "graph": {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "good"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
    },
}


async def test_a_partly_queued_prompt_is_stopped_and_forgotten(generator_factory, simulator, tmp_path: Path):
    """ComfyUI queues the valid output of a half-valid graph (200 with node_errors): it must not stay."""
    (tmp_path / "half_valid.json").write_text(json.dumps(HALF_VALID))
    for packaged in PACKAGED_DIR.glob("*.json"):
        (tmp_path / packaged.name).write_text(packaged.read_text())
    server = await generator_factory(comfyui_urls=simulator.url, templates_dir=tmp_path)
    simulator.faults.hang_nodes = ["EmptyImage"]
    channel = open_channel(server.address)
    try:
        result = await run(generator_pb2_grpc.GeneratorServiceStub(channel), template_request("half_valid"))
    finally:
        await channel.close()
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "graph.3.inputs.filename_prefix" in {v.field for v in result.error.violations}
    prompt_id = result.error.metadata["prompt_id"]
    await wait_until(lambda: not simulator.state()["running"] and not simulator.state()["pending"], within=10)
    async with httpx.AsyncClient(base_url=simulator.url) as http:

        async def forgotten() -> bool:
            return (await http.get(f"/history/{prompt_id}")).json() == {}

        for _ in range(100):
            if await forgotten():
                break
            await asyncio.sleep(0.05)
        assert await forgotten()
    assert not list((Path(simulator.data_dir) / "output").rglob(f"*{prompt_id}*"))


async def test_backend_paths_never_reach_the_caller(generator_stub, simulator):
    simulator.faults.fail_nodes = {"ImageInvert": "cannot open /srv/comfyui/models/secret.bin for reading"}
    result = await run(generator_stub, template_request("inverted_image", width=8, height=8))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.ABORTED
    assert "/srv" not in result.error.message
    assert "/srv" not in result.error.metadata["exception_message"]
    assert "cannot open <path> for reading" in result.error.metadata["exception_message"]
