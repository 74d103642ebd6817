"""The Images API kind through the generator: outputs, progress, and every failure's status."""

from __future__ import annotations

import asyncio
import io

import grpc
import pytest
from PIL import Image

from images_api_sim import ImagesSimConfig, ImagesSimHandle, start_images_sim
from mediagen.v1 import common_pb2, generator_pb2
from predictions_sim import PredictionsSimHandle
from tests.generator.support import run, sha256, template_request, wait_until
from tests.providers.conftest import (
    IMAGES_KEY,
    IMAGES_KEY_ENV,
    Remote,
    backends,
    generator_with,
)


def _decoded(data: bytes | bytearray) -> Image.Image:
    image = Image.open(io.BytesIO(bytes(data)))
    image.load()
    return image


async def test_generation_with_n_gives_items_of_one_output(remote: Remote) -> None:
    result = await run(
        remote.stub, template_request("gpt_image", prompt="a red kite", n=3, output_format="webp")
    )
    assert result.error is None
    assert result.accepted.backend == "images"
    assert result.accepted.template == "gpt_image"
    assert result.accepted.parameters["n"].int_value == 3
    assert [m.start.index for m in result.media] == [0, 1, 2]
    for media in result.media:
        assert media.end is not None
        assert media.end.size_bytes == len(media.data)
        assert media.end.sha256 == sha256(media.data)
        assert media.start.mime_type == "image/webp"
        assert media.start.format == "webp"
        assert media.start.media_type == common_pb2.MEDIA_TYPE_IMAGE
        assert _decoded(media.data).size == (1024, 1024)
    assert len({m.end.sha256 for m in result.media if m.end}) == 3
    assert result.completed is not None
    assert result.completed.media_count == 3
    assert [e.path for e in remote.images.log] == ["/v1/images/generations"]


async def test_large_image_streams_in_chunks_with_a_small_chunk_size(remote: Remote) -> None:
    result = await run(
        remote.stub, template_request("gpt_image", prompt="big", size="1536x1024", quality="high")
    )
    assert result.error is None
    media = result.media[0]
    assert _decoded(media.data).size == (1536, 1024)
    assert media.end is not None
    assert media.end.sha256 == sha256(media.data)


async def test_partial_images_become_progress_not_outputs(remote: Remote) -> None:
    result = await run(remote.stub, template_request("gpt_image", prompt="stream me", partial_images=3, n=2))
    assert result.error is None
    partial = [
        e.progress
        for e in result.events
        if e.HasField("progress") and e.progress.node_type == "partial_image"
    ]
    assert partial, result.kinds()
    assert all(p.stage == common_pb2.PROGRESS_STAGE_EXECUTING and p.max == 3 for p in partial)
    assert len(result.media) == 2
    for media in result.media:
        assert media.end is not None
        assert media.end.sha256 == sha256(media.data)
        assert _decoded(media.data).size == (1024, 1024)


async def test_edit_sends_the_input_image(remote: Remote) -> None:
    source = io.BytesIO()
    Image.new("RGB", (64, 48), (0, 200, 0)).save(source, "PNG")
    request = template_request("gpt_image_edit", prompt="make it blue", size="1024x1536")
    request.workflow.inputs.append(
        generator_pb2.InputMedia(parameter="image", filename="in.png", data=source.getvalue())
    )
    result = await run(remote.stub, request)
    assert result.error is None
    assert _decoded(result.media[0].data).size == (1024, 1536)
    assert [e.path for e in remote.images.log] == ["/v1/images/edits"]


async def test_edit_without_its_image_is_refused_before_the_provider(remote: Remote) -> None:
    result = await run(remote.stub, template_request("gpt_image_edit", prompt="x"))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "workflow.inputs[image]" in [v.field for v in result.error.violations]
    assert remote.images.log == []


async def test_bad_parameter_is_refused_before_the_provider(remote: Remote) -> None:
    result = await run(remote.stub, template_request("gpt_image", prompt="x", size="999x999", n=11))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in result.error.violations}
    assert fields == {"workflow.parameters[size]", "workflow.parameters[n]"}
    assert remote.images.log == []


async def test_429_is_retried_after_retry_after(remote: Remote) -> None:
    remote.images.faults.rate_limit_burst = 2
    remote.images.faults.retry_after_s = 0.2
    result = await run(remote.stub, template_request("gpt_image", prompt="patience", timeout=20))
    assert result.error is None, result.error
    assert [e.status for e in remote.images.log] == [429, 429, 200]
    gaps = [b.at - a.at for a, b in zip(remote.images.log, remote.images.log[1:], strict=False)]
    assert all(gap >= 0.19 for gap in gaps), gaps


async def test_429_past_the_deadline_is_resource_exhausted_without_a_late_request(remote: Remote) -> None:
    remote.images.faults.rate_limit_burst = 100
    remote.images.faults.retry_after_s = 30
    result = await run(remote.stub, template_request("gpt_image", prompt="no room", timeout=5))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert result.error.reason == "PROVIDER_RATE_LIMITED"
    assert result.error.metadata["retry_after_seconds"] == "30"
    assert result.error.metadata["provider_code"] == "rate_limit_exceeded"
    assert len(remote.images.log) == 1


async def test_content_policy_refusal_is_failed_precondition_with_the_providers_code(remote: Remote) -> None:
    result = await run(remote.stub, template_request("gpt_image", prompt="something forbidden"))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert result.error.reason == "CONTENT_POLICY"
    assert result.error.metadata["provider_code"] == "moderation_blocked"
    assert result.media == []


async def test_server_error_is_unavailable(remote: Remote) -> None:
    remote.images.faults.server_errors = 1
    result = await run(remote.stub, template_request("gpt_image", prompt="x"))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.UNAVAILABLE
    assert result.error.reason == "PROVIDER_UNAVAILABLE"


async def test_truncated_answer_is_data_loss_never_a_short_file(remote: Remote) -> None:
    remote.images.faults.truncate_after = 2000
    result = await run(remote.stub, template_request("gpt_image", prompt="cut"))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.DATA_LOSS
    assert all(m.end is None for m in result.media)


async def test_hanging_provider_ends_at_the_deadline(remote: Remote) -> None:
    remote.images.faults.hang = True
    result = await run(remote.stub, template_request("gpt_image", prompt="wait", timeout=1))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert result.error.reason == "JOB_DEADLINE_EXCEEDED"


async def test_concurrency_limit_answers_resource_exhausted(remote: Remote) -> None:
    remote.images.faults.hang = True
    calls = [
        remote.stub.Generate(template_request("gpt_image", prompt=f"slot {i}", timeout=30)) for i in range(2)
    ]
    await wait_until(lambda: len(remote.images.log) == 2)
    third = await run(remote.stub, template_request("gpt_image", prompt="no slot"))
    assert third.error is not None
    assert third.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert third.error.reason == "BACKENDS_FULL"  # a refusal before start: safe to ask again
    for call in calls:
        call.cancel()
    await asyncio.sleep(0.1)


async def test_status_and_listing_name_each_kind(remote: Remote) -> None:
    status = await remote.stub.GetBackendStatus(generator_pb2.GetBackendStatusRequest())
    assert {(b.name, b.kind, b.up) for b in status.backends} == {
        ("images", "images_api", True),
        ("replicate", "predictions", True),
    }
    listing = await remote.stub.ListWorkflows(generator_pb2.ListWorkflowsRequest())
    kinds = {t.name: t.backend_kind for t in listing.templates}
    assert kinds == {"gpt_image": "images_api", "gpt_image_edit": "images_api", "flux_schnell": "predictions"}


async def test_url_items_are_downloaded_without_the_key(
    images_sim: ImagesSimHandle, predictions_sim: PredictionsSimHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared = backends(images_sim.url, predictions_sim.url, model="dall-e-2")
    async with generator_with(monkeypatch, declared) as (_, stub):
        result = await run(stub, template_request("gpt_image", prompt="by url", n=2))
        assert result.error is None, result.error
        assert len(result.media) == 2
        for media in result.media:
            assert media.end is not None
            assert media.start.expected_size == media.end.size_bytes == len(media.data)
            assert _decoded(media.data).size == (1024, 1024)
        assert [with_key for _, with_key in images_sim.simulator.deliveries] == [False, False]


async def test_deadline_during_a_slow_event_stream(remote: Remote) -> None:
    remote.images.faults.partial_delay_s = 0.6
    result = await run(
        remote.stub, template_request("gpt_image", prompt="slowly", partial_images=3, timeout=1.5)
    )
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert any(e.HasField("progress") and e.progress.node_type == "partial_image" for e in result.events)
    assert result.media == []


async def test_jobs_spread_over_backends_of_one_kind(
    images_sim: ImagesSimHandle, predictions_sim: PredictionsSimHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = await start_images_sim(ImagesSimConfig(api_key=IMAGES_KEY))
    declared = backends(images_sim.url, predictions_sim.url)
    declared.append({"kind": "images_api", "url": second.url, "key_env": IMAGES_KEY_ENV, "name": "images-b"})
    async with second, generator_with(monkeypatch, declared) as (_, stub):
        for sim in (images_sim, second):
            sim.faults.hang = True
        calls = [
            stub.Generate(template_request("gpt_image", prompt=f"spread {i}", timeout=30)) for i in range(2)
        ]
        await wait_until(lambda: len(images_sim.log) + len(second.log) == 2)
        assert (len(images_sim.log), len(second.log)) == (1, 1)
        for call in calls:
            call.cancel()
