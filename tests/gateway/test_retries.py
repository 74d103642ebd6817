"""A generator call is retried in one place, and only when the generator said nothing was queued."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from comfyui_sim import SimulatorHandle
from gateway.peers import GENERATOR_CONFIG
from generator_service.app import build_spec as build_generator
from generator_service.settings import GeneratorSettings
from mediagen.scaffold import RunningServer, start_server
from mediagen.scaffold.channels import open_channel, refused_before_start
from mediagen.scaffold.errors import status_details, status_of_rpc_error
from mediagen.v1 import generator_pb2, generator_pb2_grpc
from tests.gateway.conftest import start_gateway, stop_gateway
from tests.gateway.runs import output, request, run
from tests.storage.conftest import StorageServer

LIMIT = 512 * 1024


@pytest.fixture
async def small_generator(simulator: SimulatorHandle) -> AsyncIterator[RunningServer]:
    """A generator whose messages may be at most 512 KiB, and that takes one job at a time."""
    settings = GeneratorSettings.model_validate(
        {
            "comfyui_urls": simulator.url,
            "port": 0,
            "log_format": "text",
            "max_message_bytes": LIMIT,
            "max_queue_per_backend": 1,
            "chunk_size": 16 * 1024,
        }
    )
    running = await start_server(await build_generator(settings), settings)
    yield running
    await running.stop(0)


def prompt_filling(limit: int) -> str:
    """A prompt that makes the generator's request just fit under ``limit``."""
    spec = output("sd15_txt2img", prompt="", width=16, height=16, steps=1)
    probe = generator_pb2.GenerateRequest(request_id="x" * 34, workflow=spec.workflow)
    probe.timeout.seconds = 300
    return "p" * (limit - probe.ByteSize() - 64)


async def test_a_request_near_the_message_limit_runs_once(
    small_generator: RunningServer, storage: StorageServer, sim: SimulatorHandle
) -> None:
    gateway = await start_gateway(
        generator_target=small_generator.address, storage_target=storage.address, max_string_bytes=LIMIT
    )
    before = int(sim.state()["prompts_run"])  # type: ignore[call-overload]
    try:
        spec = output("sd15_txt2img", prompt=prompt_filling(LIMIT), width=16, height=16, steps=1)
        result = await run(gateway.stub, request(spec))
    finally:
        await stop_gateway(gateway)
    assert sim.state()["prompts_run"] == before + 1
    assert not result.of("output_failed")
    assert result.completed.media_stored == 1
    accepted = result.of("output_accepted")[0].output_accepted.accepted
    assert "prompt" not in accepted.parameters
    assert accepted.parameters["seed"].int_value == accepted.seed


async def test_only_an_explicit_refusal_is_safe_to_retry(
    small_generator: RunningServer, sim: SimulatorHandle
) -> None:
    sim.faults.hang_nodes = ["EmptyImage"]
    channel = open_channel(small_generator.address, max_message_bytes=4 * LIMIT)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    try:
        busy = stub.Generate(
            generator_pb2.GenerateRequest(workflow=output("solid_image").workflow), timeout=30
        )  # type: ignore[attr-defined]
        await busy.read()  # accepted: the only slot is taken
        with pytest.raises(grpc.aio.AioRpcError) as full:
            async for _ in stub.Generate(
                generator_pb2.GenerateRequest(workflow=output("solid_image").workflow), timeout=30
            ):  # type: ignore[attr-defined]
                pass
        too_big = output("sd15_txt2img", prompt="p" * (2 * LIMIT))
        with pytest.raises(grpc.aio.AioRpcError) as oversized:
            async for _ in stub.Generate(
                generator_pb2.GenerateRequest(workflow=too_big.workflow), timeout=30
            ):  # type: ignore[attr-defined]
                pass
        busy.cancel()
    finally:
        await channel.close()
    assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_details(status_of_rpc_error(full.value)).reason == "BACKENDS_FULL"
    assert refused_before_start(full.value)
    assert oversized.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert not refused_before_start(oversized.value)


def test_the_channel_never_retries_a_generate_call() -> None:
    methods = {name["method"] for config in GENERATOR_CONFIG["methodConfig"] for name in config["name"]}
    assert "Generate" not in methods
