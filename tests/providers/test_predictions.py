"""The predictions kind through the generator: follow, outputs, cancel on the provider, failures."""

from __future__ import annotations

import io
from typing import Any

import grpc
import pytest
from PIL import Image

from mediagen.v1 import common_pb2
from tests.generator.support import run, sha256, template_request, wait_until
from tests.providers.conftest import Remote


def _paths(remote: Remote) -> list[str]:
    return [f"{e.method} {e.path}" for e in remote.predictions.log]


async def test_prediction_outputs_are_downloaded_and_checked(remote: Remote) -> None:
    result = await run(
        remote.stub,
        template_request("flux_schnell", prompt="a lighthouse", num_outputs=2, output_format="png", seed=7),
    )
    assert result.error is None, result.error
    assert result.accepted.backend == "replicate"
    assert result.accepted.seed == 7
    assert len(result.media) == 2
    for media in result.media:
        assert media.end is not None
        assert media.end.size_bytes == len(media.data) == media.start.expected_size
        assert media.end.sha256 == sha256(media.data)
        assert media.start.mime_type == "image/png"
        with Image.open(io.BytesIO(bytes(media.data))) as image:
            assert image.size == (1024, 1024)
    assert result.completed is not None
    assert result.completed.media_count == 2
    assert _paths(remote)[0] == "POST /v1/models/black-forest-labs/flux-schnell/predictions"


async def test_a_slow_prediction_is_polled_and_reports_steps(remote: Remote) -> None:
    remote.predictions.faults.queue_delay_s = 0.3
    remote.predictions.faults.step_delay_s = 0.4
    result = await run(remote.stub, template_request("flux_schnell", prompt="slow", timeout=30))
    assert result.error is None, result.error
    progress = [e.progress for e in result.events if e.HasField("progress")]
    assert any(
        p.stage == common_pb2.PROGRESS_STAGE_EXECUTING and p.max == 4 and p.value >= 1 for p in progress
    )
    polls = [p for p in _paths(remote) if p.startswith("GET /v1/predictions/")]
    assert polls, _paths(remote)


async def test_random_seed_is_reported_and_sent(remote: Remote) -> None:
    result = await run(remote.stub, template_request("flux_schnell", prompt="seeded"))
    assert result.error is None
    prediction = next(iter(remote.predictions.simulator.predictions.values()))
    assert prediction.input["seed"] == result.accepted.seed


async def test_deadline_cancels_the_prediction_on_the_provider(remote: Remote) -> None:
    remote.predictions.faults.hang = True
    result = await run(remote.stub, template_request("flux_schnell", prompt="forever", timeout=2))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    prediction = next(iter(remote.predictions.simulator.predictions.values()))
    assert prediction.status == "canceled"
    assert f"POST /v1/predictions/{prediction.id}/cancel" in _paths(remote)


async def test_caller_leaving_cancels_the_prediction(remote: Remote) -> None:
    remote.predictions.faults.hang = True
    call = remote.stub.Generate(template_request("flux_schnell", prompt="leave", timeout=30))
    async for event in call:
        if event.HasField("accepted"):
            break
    call.cancel()
    predictions = remote.predictions.simulator.predictions
    await wait_until(lambda: any(p.status == "canceled" for p in predictions.values()), within=10)


async def test_caller_leaving_during_creation_still_cancels_what_was_created(remote: Remote) -> None:
    remote.predictions.faults.hang = True
    call = remote.stub.Generate(template_request("flux_schnell", prompt="early", timeout=30))
    await wait_until(lambda: len(remote.predictions.simulator.predictions) == 1)
    call.cancel()
    predictions = remote.predictions.simulator.predictions
    await wait_until(lambda: all(p.status == "canceled" for p in predictions.values()), within=15)


async def test_failed_prediction_is_aborted_with_the_providers_error(remote: Remote) -> None:
    remote.predictions.faults.fail_next = 1
    result = await run(remote.stub, template_request("flux_schnell", prompt="oom"))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.ABORTED
    assert result.error.reason == "EXECUTION_ERROR"
    assert "CUDA out of memory" in result.error.metadata["provider_error"]


async def test_safety_refusal_is_failed_precondition(remote: Remote) -> None:
    result = await run(remote.stub, template_request("flux_schnell", prompt="forbidden thing"))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert result.error.reason == "CONTENT_POLICY"
    assert result.error.metadata["provider_code"] == "safety_checker"


async def test_429_on_creation_is_retried_then_succeeds(remote: Remote) -> None:
    remote.predictions.faults.rate_limit_burst = 1
    remote.predictions.faults.retry_after_s = 0.2
    result = await run(remote.stub, template_request("flux_schnell", prompt="busy", timeout=20))
    assert result.error is None, result.error
    assert [e.status for e in remote.predictions.log[:2]] == [429, 201]


async def test_429_past_the_deadline_is_resource_exhausted(remote: Remote) -> None:
    remote.predictions.faults.rate_limit_burst = 10
    remote.predictions.faults.retry_after_s = 60
    result = await run(remote.stub, template_request("flux_schnell", prompt="busy", timeout=3))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert result.error.metadata["provider_code"] == "Request was throttled."
    assert len(remote.predictions.log) == 1


async def test_truncated_output_download_is_data_loss(remote: Remote) -> None:
    remote.predictions.faults.truncate_after = 1000
    result = await run(remote.stub, template_request("flux_schnell", prompt="cut", output_format="png"))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.DATA_LOSS
    assert result.error.reason == "TRUNCATED_DOWNLOAD"
    assert all(m.end is None for m in result.media)


async def test_server_error_is_unavailable(remote: Remote) -> None:
    remote.predictions.faults.server_errors = 1
    result = await run(remote.stub, template_request("flux_schnell", prompt="x"))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.UNAVAILABLE


async def test_downloads_carry_no_key(remote: Remote) -> None:
    result = await run(remote.stub, template_request("flux_schnell", prompt="x", num_outputs=2))
    assert result.error is None
    deliveries = remote.predictions.simulator.deliveries
    assert len(deliveries) == 2
    assert [with_key for _, with_key in deliveries] == [False, False]


async def test_losing_the_provider_mid_job_still_cancels_the_prediction(remote: Remote) -> None:
    remote.predictions.faults.hang = True
    call: Any = remote.stub.Generate(template_request("flux_schnell", prompt="lost", timeout=30))
    while not (await call.read()).HasField("accepted"):
        pass
    remote.predictions.faults.server_errors = 1  # the next poll fails
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await _drain(call)
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    predictions = remote.predictions.simulator.predictions
    await wait_until(lambda: all(p.status == "canceled" for p in predictions.values()), within=10)


async def _drain(call: Any) -> None:
    while await call.read() is not grpc.aio.EOF:
        pass
