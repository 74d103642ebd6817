"""The target of the predictions contract tests: a fresh simulator, or a real provider.

Every test runs against the simulator, and again against the real API named by
``MEDIAGEN_TEST_PREDICTIONS_URL`` (e.g. ``https://api.replicate.com``) with the token in
``MEDIAGEN_TEST_PREDICTIONS_TOKEN`` when both are set (skipped otherwise). The model is
``black-forest-labs/flux-schnell``, the cheapest image model the simulator mirrors. Tests that
need fault knobs ask for ``faults`` and skip on a real provider.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from predictions_sim import Faults, PredictionsSimConfig, start_predictions_sim
from tests.support.provider_target import ProviderTarget, real_provider

SIM_TOKEN = "r8_contract_sim"
MODEL = "black-forest-labs/flux-schnell"


@dataclass
class Target(ProviderTarget[Faults]):
    async def create(self, prefer: str = "", **inputs: Any) -> httpx.Response:
        headers = {**self.auth, **({"Prefer": prefer} if prefer else {})}
        body = {
            "input": {"prompt": "a small red cube", "num_inference_steps": 1, "megapixels": "0.25", **inputs}
        }
        return await self.http.post(f"{self.url}/v1/models/{MODEL}/predictions", json=body, headers=headers)

    async def until_over(self, prediction: dict[str, Any], within: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while prediction["status"] not in ("succeeded", "failed", "canceled"):
            assert time.monotonic() < deadline, prediction
            await asyncio.sleep(0.2)
            prediction = (await self.http.get(prediction["urls"]["get"], headers=self.auth)).json()
        return prediction


@pytest.fixture(params=["simulator", "real"])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0)) as http:
        if request.param == "simulator":
            async with await start_predictions_sim(PredictionsSimConfig(api_token=SIM_TOKEN)) as sim:
                yield Target(sim.url, SIM_TOKEN, sim, http)
            return
        url, token = real_provider("MEDIAGEN_TEST_PREDICTIONS_URL", "MEDIAGEN_TEST_PREDICTIONS_TOKEN")
        yield Target(url, token, None, http)
