"""The target of the Images API contract tests: a fresh simulator, or a real provider.

Every test runs against the simulator, and again against the real API named by
``MEDIAGEN_TEST_IMAGES_URL`` with the key in ``MEDIAGEN_TEST_IMAGES_KEY`` (and the model in
``MEDIAGEN_TEST_IMAGES_MODEL``, default ``gpt-image-1``) when those are set; skipped, with the
reason, otherwise. Real runs are billed by the provider, so requests ask for low quality. Tests
that need fault knobs ask for ``faults`` and skip on a real provider.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from images_api_sim import Faults, ImagesSimConfig, start_images_sim
from tests.support.provider_target import ProviderTarget, real_provider

SIM_KEY = "sk-contract-sim"


@dataclass
class Target(ProviderTarget[Faults]):
    model: str

    async def generate(self, **body: object) -> httpx.Response:
        payload = {"model": self.model, "quality": "low", **body}
        return await self.http.post(f"{self.url}/v1/images/generations", json=payload, headers=self.auth)

    async def edit(self, image: bytes, **fields: str) -> httpx.Response:
        """A multipart edit of the PNG ``image``, at low quality, with these form fields."""
        data = {"model": self.model, "quality": "low", **fields}
        files = [("image", ("in.png", image, "image/png"))]
        return await self.http.post(f"{self.url}/v1/images/edits", headers=self.auth, data=data, files=files)


@pytest.fixture(params=["simulator", "real"])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0)) as http:
        if request.param == "simulator":
            async with await start_images_sim(ImagesSimConfig(api_key=SIM_KEY)) as sim:
                yield Target(sim.url, SIM_KEY, sim, http, "gpt-image-1")
            return
        url, key = real_provider("MEDIAGEN_TEST_IMAGES_URL", "MEDIAGEN_TEST_IMAGES_KEY")
        yield Target(url, key, None, http, os.environ.get("MEDIAGEN_TEST_IMAGES_MODEL", "gpt-image-1"))
