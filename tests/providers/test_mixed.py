"""ComfyUI and the remote kinds in one generator: placement by kind, one status listing."""

from __future__ import annotations

import logging

import grpc
import pytest

from comfyui_sim.server import SimulatorHandle
from images_api_sim import ImagesSimHandle
from mediagen.v1 import generator_pb2
from predictions_sim import PredictionsSimHandle
from tests.generator.conftest import start_generator
from tests.generator.support import run, sha256, template_request
from tests.providers.conftest import (
    IMAGES_KEY,
    IMAGES_KEY_ENV,
    PREDICTIONS_KEY,
    Remote,
    backends,
    generator_with,
)


async def test_each_template_runs_on_its_kind(
    simulator: SimulatorHandle,
    images_sim: ImagesSimHandle,
    predictions_sim: PredictionsSimHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    declared = backends(images_sim.url, predictions_sim.url)
    async with generator_with(monkeypatch, declared, comfyui_urls=simulator.url) as (_, stub):
        status = await stub.GetBackendStatus(generator_pb2.GetBackendStatusRequest())
        assert sorted((b.kind, b.name) for b in status.backends) == [
            ("comfyui", "comfyui-0"),
            ("images_api", "images"),
            ("predictions", "replicate"),
        ]
        requests = [
            (template_request("solid_image"), "comfyui-0"),
            (template_request("gpt_image", prompt="a"), "images"),
            (template_request("flux_schnell", prompt="b"), "replicate"),
        ]
        for request, backend in requests:
            template = request.workflow.template
            result = await run(stub, request)
            assert result.error is None, (template, result.error)
            assert result.accepted.backend == backend
            assert result.media
            assert all(m.end and m.end.sha256 == sha256(m.data) for m in result.media)


async def test_a_missing_key_variable_stops_start_up_naming_it(
    images_sim: ImagesSimHandle, predictions_sim: PredictionsSimHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(IMAGES_KEY_ENV, raising=False)
    with pytest.raises(ValueError, match=IMAGES_KEY_ENV):
        await start_generator(backends=backends(images_sim.url, predictions_sim.url))


async def test_a_kind_that_is_down_is_unavailable(
    images_sim: ImagesSimHandle, predictions_sim: PredictionsSimHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    await predictions_sim.stop()
    async with generator_with(monkeypatch, backends(images_sim.url, predictions_sim.url)) as (_, stub):
        result = await run(stub, template_request("flux_schnell", prompt="x"))
        assert result.error is not None
        assert result.error.code == grpc.StatusCode.UNAVAILABLE
        assert result.error.reason == "NO_BACKEND"
        assert (await run(stub, template_request("gpt_image", prompt="x"))).error is None
        comfy = await run(stub, template_request("solid_image"))
        assert comfy.error is not None
        assert comfy.error.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_validation_knows_the_provider_templates(
    images_sim: ImagesSimHandle, predictions_sim: PredictionsSimHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with generator_with(monkeypatch, backends(images_sim.url, predictions_sim.url)) as (_, stub):
        good = [template_request("gpt_image", prompt="a"), template_request("flux_schnell", prompt="b")]
        bad = [
            template_request("gpt_image", prompt="a", quality="ultra"),
            template_request("flux_schnell", num_outputs=5),
            template_request("gpt_image_edit", prompt="c"),
        ]
        reply = await stub.ValidateWorkflows(generator_pb2.ValidateWorkflowsRequest(jobs=good + bad))
        found = {(v.job_index, v.field) for v in reply.violations}
        assert found == {
            (2, "workflow.parameters[quality]"),
            (3, "workflow.parameters[num_outputs]"),
            (3, "workflow.parameters[prompt]"),
            (4, "workflow.inputs[image]"),
        }
        assert images_sim.log == []
        assert predictions_sim.log == []


@pytest.mark.parametrize(
    ("template", "key"),
    [("gpt_image", IMAGES_KEY), ("flux_schnell", PREDICTIONS_KEY)],
    ids=["images", "predictions"],
)
async def test_a_refused_key_is_unavailable_and_never_shown(
    remote: Remote, caplog: pytest.LogCaptureFixture, template: str, key: str
) -> None:
    """The provider refuses the key the generator sends: the caller hears why, never the key."""
    caplog.set_level(logging.DEBUG)
    remote.images.simulator.config.api_key = "sk-another-key"
    remote.predictions.simulator.config.api_token = "r8_someone_else"
    result = await run(remote.stub, template_request(template, prompt="x"))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.UNAVAILABLE
    assert result.error.reason == "PROVIDER_UNAUTHORIZED"
    assert key not in result.error.message
    assert all(key not in value for value in result.error.metadata.values())
    assert key not in caplog.text
