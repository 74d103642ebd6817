"""The target of the contract tests: a fresh simulator, or a real ComfyUI.

Every contract test runs twice: against a simulator started for the test, and against the real
server named by ``MEDIAGEN_TEST_COMFYUI_URL`` (skipped, with the reason, when it is unset).
Tests that need simulator knobs (faults) ask for ``sim_only``; tests that need the
``ProbeSleepProgress`` capture node work on a real server only if that node is installed there.
"""

from __future__ import annotations

import os
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


@pytest.fixture(params=["simulator", "real"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    async with aiohttp.ClientSession() as http:
        if request.param == "real":
            url = os.environ.get(REAL_URL_ENV)
            if not url:
                pytest.skip(f"{REAL_URL_ENV} is not set: no real ComfyUI to run the contract against")
            yield Target(Comfy(url, http), None)
            return
        config = SimulatorConfig(host="127.0.0.1", port=0, data_dir=tmp_path)
        config.faults.step_delay_s = 0.01
        async with running_simulator(config) as sim:
            yield Target(Comfy(sim.url, http), sim)
