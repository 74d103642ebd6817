"""Reusable fixtures: a ComfyUI simulator and an in-process generator bound to it.

Other suites import these (``from tests.generator.conftest import ...`` or via pytest plugins):
``simulator`` is a fresh in-process simulator per test (its faults are live), and
``generator_server`` a generator on an ephemeral port, attached to it, with short watchdog and
polling periods so fault tests run in seconds. ``start_generator`` builds one with overrides.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from comfyui_sim import SimulatorConfig, start_simulator
from comfyui_sim.server import SimulatorHandle
from generator_service.app import build_spec
from generator_service.settings import GeneratorSettings
from mediagen.scaffold import RunningServer, start_server
from mediagen.scaffold.channels import open_channel
from mediagen.v1 import generator_pb2_grpc

FAST = {
    "watchdog_quiet_seconds": 1.0,
    "poll_interval": 0.1,
    "backend_lost_seconds": 1.5,
    "cancel_wait_seconds": 3.0,
    "history_retry_seconds": 1.0,
    "restart_backoff_initial": 0.2,
    "progress_interval_seconds": 0.0,  # every report, for tests that follow steps (see test_outbox_pacing)
    "log_format": "text",
}


_STATE_ROOT = tempfile.TemporaryDirectory(prefix="mediagen-generator-state-")


def generator_settings(**overrides: Any) -> GeneratorSettings:
    """Each generator gets a journal directory of its own, as each replica should."""
    state_dir = Path(tempfile.mkdtemp(dir=_STATE_ROOT.name))
    return GeneratorSettings(**{"host": "127.0.0.1", "port": 0, "state_dir": state_dir, **FAST, **overrides})


async def start_generator(**overrides: Any) -> RunningServer:
    settings = generator_settings(**overrides)
    spec = await build_spec(settings)
    return await start_server(spec, settings)


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[SimulatorHandle]:
    sim = await start_simulator(SimulatorConfig(host="127.0.0.1", port=0, data_dir=tmp_path / "comfy"))
    sim.faults.step_delay_s = 0.005
    yield sim
    await sim.stop()


@pytest.fixture
async def generator_server(simulator: SimulatorHandle) -> AsyncIterator[RunningServer]:
    server = await start_generator(comfyui_urls=simulator.url)
    yield server
    await server.stop(1.0)


@pytest.fixture
async def generator_factory() -> AsyncIterator[Callable[..., Awaitable[RunningServer]]]:
    started: list[RunningServer] = []

    async def make(**overrides: Any) -> RunningServer:
        server = await start_generator(**overrides)
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop(1.0)


@pytest.fixture
async def generator_stub(
    generator_server: RunningServer,
) -> AsyncIterator[generator_pb2_grpc.GeneratorServiceAsyncStub]:
    channel = open_channel(generator_server.address, max_message_bytes=16 * 1024 * 1024)
    yield generator_pb2_grpc.GeneratorServiceStub(channel)
    await channel.close()
