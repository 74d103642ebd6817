"""The target of the contract tests: a fresh simulator, or a real ComfyUI.

Every contract test runs twice: against a simulator started for the test, and against the real
server named by ``MEDIAGEN_TEST_COMFYUI_URL`` (skipped, with the reason, when it is unset).
Tests that need simulator knobs (faults) ask for ``sim_only``; tests that need the
``ProbeSleepProgress`` capture node work on a real server only if that node is installed there.
A real server outlives the tests, so each test starts and ends with it idle: a test that fails
mid-way would otherwise leave prompts running whose broadcast events and queue positions break
the exact sequences that the following tests compare.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from comfyui_sim import Faults, SimulatorConfig, SimulatorHandle, running_simulator
from tests.contract.client import Comfy

REAL_URL_ENV = "MEDIAGEN_TEST_COMFYUI_URL"


@dataclass
class Target:
    comfy: Comfy
    sim: SimulatorHandle | None

    @property
    def faults(self) -> Faults:
        if self.sim is None:
            pytest.skip("needs simulator knobs; not available on a real ComfyUI")
        return self.sim.faults

    @property
    def data_dir(self) -> Path:
        if self.sim is None:
            pytest.skip("needs direct access to the server's folders")
        return self.sim.data_dir

    async def require_probe_node(self) -> None:
        """Skip on a real server that does not have the capture-time probe node installed."""
        if self.sim is None and not await self.comfy.get("/object_info/ProbeSleepProgress"):
            pytest.skip("the real server lacks the ProbeSleepProgress probe node")


async def settle(comfy: Comfy, within: float = 90.0) -> None:
    """Clear the queue and interrupt what runs until the server is idle (bounded in time)."""
    await comfy.request("POST", "/queue", json={"clear": True})
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        queue = await comfy.get("/queue")
        if not queue["queue_running"] and not queue["queue_pending"]:
            return
        await comfy.request("POST", "/interrupt")
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{comfy.url} did not become idle within {within} s")


@pytest.fixture(params=["simulator", "real"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    async with aiohttp.ClientSession() as http:
        if request.param == "real":
            url = os.environ.get(REAL_URL_ENV)
            if not url:
                pytest.skip(f"{REAL_URL_ENV} is not set: no real ComfyUI to run the contract against")
            comfy = Comfy(url, http)
            await settle(comfy)
            try:
                yield Target(comfy, None)
            finally:
                await settle(comfy)
            return
        config = SimulatorConfig(host="127.0.0.1", port=0, data_dir=tmp_path)
        config.faults.step_delay_s = 0.01
        async with running_simulator(config) as sim:
            yield Target(Comfy(sim.url, http), sim)
