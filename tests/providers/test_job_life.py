"""A remote job lives the same life as a ComfyUI job: it is on the backend once the provider gave
it an id, and letting go of it there cancels the prediction on the provider."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from generator_service.app import job_limits
from generator_service.lifecycle import JobLife, JobState
from generator_service.providers import templates as provider_templates
from generator_service.providers.base import RemoteBackend
from generator_service.providers.config import BackendConfig, build_remote
from generator_service.providers.job import ProviderJob
from predictions_sim import PredictionsSimHandle
from tests.generator.conftest import generator_settings
from tests.generator.support import template_request, wait_until
from tests.providers.conftest import PREDICTIONS_KEY, PREDICTIONS_KEY_ENV
from tests.support.events import messages


@pytest.fixture
async def predictions(
    predictions_sim: PredictionsSimHandle, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RemoteBackend]:
    monkeypatch.setenv(PREDICTIONS_KEY_ENV, PREDICTIONS_KEY)
    config = BackendConfig.model_validate(
        {"kind": "predictions", "url": predictions_sim.url, "key_env": PREDICTIONS_KEY_ENV, "prefer_wait": 1}
    )
    (backend,) = build_remote([config], 10.0)
    await backend.start()
    yield backend
    await backend.close()


def new_job(backend: RemoteBackend, prompt: str) -> ProviderJob:
    template = provider_templates.load_provider_templates(provider_templates.PACKAGED_DIR)["flux_schnell"]
    workflow = provider_templates.check_job(template_request("flux_schnell", prompt=prompt), template)
    limits = job_limits(generator_settings(backends=[{"kind": "predictions", "url": backend.url}]))
    return ProviderJob(backend, workflow, deadline=asyncio.get_running_loop().time() + 30, limits=limits)


def state_of(life: JobLife) -> JobState:
    """The state read afresh (type checkers keep a narrowed state across the steps that change it)."""
    return life.state


async def ended(job: ProviderJob) -> None:
    assert job.task is not None
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(job.task, 10)
    assert state_of(job.life) is JobState.ENDED


async def test_a_finished_remote_job_waits_for_the_caller_then_ends(predictions: RemoteBackend) -> None:
    job = new_job(predictions, "done")
    job.start()
    events = [event async for event in messages(job.events())]
    assert events[-1].HasField("completed")
    assert job.state is JobState.DELIVERED
    assert job.life.backend_may_hold
    job.release()
    await ended(job)


async def test_letting_go_of_a_remote_job_on_the_provider_cancels_it_there(
    predictions: RemoteBackend, predictions_sim: PredictionsSimHandle
) -> None:
    predictions_sim.faults.hang = True
    job = new_job(predictions, "leave")
    job.start()
    async for event in messages(job.events()):
        if event.HasField("accepted"):
            break
    await wait_until(lambda: job.state is JobState.ON_BACKEND)
    job.release()
    assert state_of(job.life) is JobState.CLEANING_UP
    await ended(job)
    made = predictions_sim.simulator.predictions
    await wait_until(lambda: [p.status for p in made.values()] == ["canceled"], within=10)
