"""Fixtures for the remote kinds: both simulators in process and a generator attached to them.

The generator gets its keys the way a deployment does: the backends list names the variables
(``MEDIAGEN_TEST_SIM_IMAGES_KEY``/``..._PREDICTIONS_KEY``), which hold the simulators' keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from images_api_sim import ImagesSimConfig, ImagesSimHandle, start_images_sim
from mediagen.scaffold import RunningServer
from mediagen.scaffold.channels import open_channel
from mediagen.v1 import generator_pb2_grpc
from predictions_sim import PredictionsSimConfig, PredictionsSimHandle, start_predictions_sim
from tests.generator.conftest import simulator, start_generator

__all__ = ["simulator"]

IMAGES_KEY = "sk-test-images-4f1c9a"
PREDICTIONS_KEY = "r8_test_predictions_77b2"
IMAGES_KEY_ENV = "MEDIAGEN_TEST_SIM_IMAGES_KEY"
PREDICTIONS_KEY_ENV = "MEDIAGEN_TEST_SIM_PREDICTIONS_KEY"


@dataclass
class Remote:
    images: ImagesSimHandle
    predictions: PredictionsSimHandle
    server: RunningServer
    stub: generator_pb2_grpc.GeneratorServiceAsyncStub


def backends(images_url: str, predictions_url: str, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"kind": "images_api", "url": images_url, "key_env": IMAGES_KEY_ENV, "name": "images", **extra},
        {
            "kind": "predictions",
            "url": predictions_url,
            "key_env": PREDICTIONS_KEY_ENV,
            "name": "replicate",
            **extra,
        },
    ]


@pytest.fixture
async def images_sim() -> AsyncIterator[ImagesSimHandle]:
    sim = await start_images_sim(ImagesSimConfig(api_key=IMAGES_KEY))
    yield sim
    await sim.stop()


@pytest.fixture
async def predictions_sim() -> AsyncIterator[PredictionsSimHandle]:
    sim = await start_predictions_sim(PredictionsSimConfig(api_token=PREDICTIONS_KEY))
    sim.faults.step_delay_s = 0.005
    yield sim
    await sim.stop()


@asynccontextmanager
async def generator_with(
    monkeypatch: pytest.MonkeyPatch,
    declared: list[dict[str, Any]],
    max_message_bytes: int = 8 * 1024 * 1024,
    **settings: Any,
) -> AsyncIterator[tuple[RunningServer, generator_pb2_grpc.GeneratorServiceAsyncStub]]:
    """A generator with the ``declared`` backends, the simulators' keys in the variables they
    name, and a stub to call it, both stopped after the ``with`` block."""
    monkeypatch.setenv(IMAGES_KEY_ENV, IMAGES_KEY)
    monkeypatch.setenv(PREDICTIONS_KEY_ENV, PREDICTIONS_KEY)
    server = await start_generator(backends=declared, **settings)
    channel = open_channel(server.address, max_message_bytes=max_message_bytes)
    try:
        yield server, generator_pb2_grpc.GeneratorServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(1.0)


@pytest.fixture
async def remote(
    images_sim: ImagesSimHandle, predictions_sim: PredictionsSimHandle, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Remote]:
    declared = backends(images_sim.url, predictions_sim.url, max_concurrency=2, prefer_wait=1)
    async with generator_with(monkeypatch, declared, max_message_bytes=16 * 1024 * 1024) as (server, stub):
        yield Remote(images_sim, predictions_sim, server, stub)
