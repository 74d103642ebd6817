"""A generator call is retried in one place, and only when the generator said nothing was queued.

A refused output waits for a place (asking again) within its bounds instead of failing after a
fixed number of tries: a caller of a full pool gets its media, a little later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from comfyui_sim import SimulatorHandle
from gateway.output import PlaceWait
from gateway.peers import GENERATOR_CONFIG
from gateway.settings import GatewaySettings
from generator_service.app import build_spec as build_generator
from generator_service.settings import GeneratorSettings
from mediagen.scaffold import RunningServer, start_server
from mediagen.scaffold.channels import open_channel, refused_before_start
from mediagen.scaffold.errors import status_details, status_of_rpc_error
from mediagen.v1 import generator_pb2, generator_pb2_grpc
from tests.gateway.conftest import start_gateway, stop_gateway
from tests.gateway.runs import output, request, run
from tests.generator.support import generator_refusals
from tests.storage.conftest import StorageServer

LIMIT = 512 * 1024


def _one_job_generator_settings(url: str, **overrides: Any) -> GeneratorSettings:
    """A generator whose messages may be at most 512 KiB, and that takes one job at a time."""
    return GeneratorSettings.model_validate(
        {
            "comfyui_urls": url,
            "port": 0,
            "log_format": "text",
            "max_message_bytes": LIMIT,
            "max_queue_per_backend": 1,
            "chunk_size": 16 * 1024,
            **overrides,
        }
    )


@pytest.fixture
async def small_generator(simulator: SimulatorHandle) -> AsyncIterator[RunningServer]:
    """One job at a time, and a full pool refuses at once whatever the caller's ``place_wait``
    (the gateway's side of waiting is tested with it)."""
    settings = _one_job_generator_settings(simulator.url, place_wait_seconds=0, max_place_wait_seconds=0)
    running = await start_server(await build_generator(settings), settings)
    yield running
    await running.stop(0)


@pytest.fixture
async def holding_generator(simulator: SimulatorHandle) -> AsyncIterator[RunningServer]:
    """One job at a time; without a ``place_wait`` in the request a full pool refuses at once."""
    settings = _one_job_generator_settings(simulator.url, place_wait_seconds=0)
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


async def test_outputs_refused_by_a_full_pool_wait_for_a_place(
    small_generator: RunningServer, storage: StorageServer, sim: SimulatorHandle
) -> None:
    """Three runs at once on a generator that takes one job: each is refused, waits, and runs."""
    sim.faults.node_delay_s = {"EmptyImage": 0.3}
    gateway = await start_gateway(generator_target=small_generator.address, storage_target=storage.address)
    refused_before = generator_refusals()
    try:
        results = await asyncio.gather(
            *(run(gateway.stub, request(output("solid_image", color=0x202020 + i))) for i in range(3))
        )
    finally:
        await stop_gateway(gateway)
    assert generator_refusals() > refused_before  # the pool was full: the outputs had to wait
    for result in results:
        assert not result.of("output_failed")
        assert result.completed.media_stored == 1


async def test_an_output_waits_for_a_place_inside_one_generator_call(
    holding_generator: RunningServer, storage: StorageServer, sim: SimulatorHandle
) -> None:
    """The gateway asks the generator to hold its call for the rest of its start wait: three
    runs at once on a generator that takes one job all run, and none is refused and asked again."""
    sim.faults.node_delay_s = {"EmptyImage": 0.3}
    gateway = await start_gateway(generator_target=holding_generator.address, storage_target=storage.address)
    refused_before = generator_refusals()
    try:
        results = await asyncio.gather(
            *(run(gateway.stub, request(output("solid_image", color=0x404040 + i))) for i in range(3))
        )
    finally:
        await stop_gateway(gateway)
    assert generator_refusals() == refused_before
    for result in results:
        assert not result.of("output_failed")
        assert result.completed.media_stored == 1


async def test_waiting_for_a_place_ends_at_start_wait(
    small_generator: RunningServer, storage: StorageServer, sim: SimulatorHandle
) -> None:
    """The only place is held by a hung job: the waiting output ends BACKENDS_FULL, nothing stored."""
    sim.faults.hang_nodes = ["EmptyImage"]
    channel = open_channel(small_generator.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    gateway = await start_gateway(
        generator_target=small_generator.address, storage_target=storage.address, start_wait=0.5
    )
    busy = stub.Generate(generator_pb2.GenerateRequest(workflow=output("solid_image").workflow), timeout=30)  # type: ignore[attr-defined]
    try:
        await busy.read()  # accepted: the only place is taken
        result = await run(gateway.stub, request(output("solid_image", color=0x303030)))
    finally:
        busy.cancel()
        await stop_gateway(gateway)
        await channel.close()
    [failed] = result.of("output_failed")
    assert failed.output_failed.status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert status_details(failed.output_failed.status).reason == "BACKENDS_FULL"
    assert result.completed.media_stored == 0


def test_a_wait_never_outlasts_its_bounds() -> None:
    settings = GatewaySettings.model_validate({"retry_backoff": 0.1, "retry_backoff_max": 0.4})
    waiting = PlaceWait(settings, time.monotonic() + 60)
    pauses = [waiting.next_pause(None) for _ in range(6)]
    assert all(p is not None and 0.05 <= p <= 0.4 for p in pauses)
    assert all(p is not None and p >= 0.2 for p in pauses[3:])  # doubled up to the cap, then held
    assert waiting.next_pause(0.1) is None  # the caller's deadline comes before the next attempt
    assert PlaceWait(settings, time.monotonic()).next_pause(None) is None  # start_wait is over
