"""A provider failure names what is known of its request, and nothing it does not know."""

from __future__ import annotations

import grpc

from generator_service.providers.http import rate_limited, unavailable
from generator_service.providers.request_ids import RequestIds


def test_a_probe_names_only_its_backend() -> None:
    assert RequestIds("images-0").metadata() == {"backend": "images-0"}


def test_a_job_names_its_backend_and_job_then_the_providers_id_once_given() -> None:
    ids = RequestIds("predictions-0", "job-1")
    assert ids.metadata() == {"backend": "predictions-0", "job_id": "job-1"}
    named = ids.with_prediction("p-9")
    assert named.metadata(provider_status="failed") == {
        "backend": "predictions-0",
        "job_id": "job-1",
        "prediction_id": "p-9",
        "provider_status": "failed",
    }
    assert ids.prediction_id == ""  # the job's ids before the provider named it are unchanged


def test_a_cancel_outside_a_job_names_the_prediction_without_an_empty_job_id() -> None:
    assert RequestIds("predictions-0", prediction_id="p-9").metadata() == {
        "backend": "predictions-0",
        "prediction_id": "p-9",
    }


def test_statuses_carry_the_ids_as_error_info_metadata() -> None:
    ids = RequestIds("images-0", "job-2")
    down = unavailable("the provider answered HTTP 503", ids)
    assert (down.code, down.reason, down.metadata) == (
        grpc.StatusCode.UNAVAILABLE,
        "PROVIDER_UNAVAILABLE",
        {"backend": "images-0", "job_id": "job-2"},
    )
    limited = rate_limited(30.0, {"error": {"code": "rate_limit_exceeded"}}, 2, ids)
    assert limited.metadata == {
        "backend": "images-0",
        "job_id": "job-2",
        "retry_after_seconds": "30",
        "attempts": "2",
        "provider_code": "rate_limit_exceeded",
    }
