"""A simulator per test, plus a client bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from comfyui_sim import SimulatorConfig, SimulatorHandle, running_simulator
from tests.contract.client import Comfy


@dataclass
class Running:
    sim: SimulatorHandle
    comfy: Comfy


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    config = SimulatorConfig(host="127.0.0.1", port=0, data_dir=tmp_path)
    config.faults.step_delay_s = 0.005
    async with running_simulator(config) as sim, aiohttp.ClientSession() as http:
        yield Running(sim, Comfy(sim.url, http))
