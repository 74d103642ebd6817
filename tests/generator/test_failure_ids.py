"""Generator failures carry the job's ids; one raised before the caller was told the prompt id
names only the backend."""

from __future__ import annotations

import grpc

from generator_service import failures
from generator_service.job_ids import JobIds

IDS = JobIds("p-1", "comfyui-0")


def test_a_job_failure_names_its_prompt_and_backend_with_its_own_details() -> None:
    error = failures.execution_failed(
        {
            "node_id": "3",
            "node_type": "KSampler",
            "exception_type": "RuntimeError",
            "exception_message": "oom",
        },
        IDS,
    )
    assert (error.code, error.reason) == (grpc.StatusCode.ABORTED, "EXECUTION_ERROR")
    assert error.metadata == {
        "prompt_id": "p-1",
        "backend": "comfyui-0",
        "node_id": "3",
        "node_type": "KSampler",
        "exception_type": "RuntimeError",
        "exception_message": "oom",
    }
    late = failures.deadline_exceeded(IDS)
    assert (late.code, late.metadata) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        {"prompt_id": "p-1", "backend": "comfyui-0"},
    )


def test_a_rejection_names_the_first_node_and_comfyuis_error_type() -> None:
    body = {
        "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation"},
        "node_errors": {
            "4": {"errors": [{"message": "Value not in list", "extra_info": {"input_name": "ckpt"}}]}
        },
    }
    error = failures.rejected(body, IDS)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.metadata == {
        "prompt_id": "p-1",
        "backend": "comfyui-0",
        "comfy_error": "prompt_outputs_failed_validation",
        "node_id": "4",
    }
    assert [v.field for v in error.violations] == ["graph.4.inputs.ckpt"]


def test_unavailable_names_the_prompt_only_once_the_caller_knows_it() -> None:
    assert failures.unavailable("down", IDS, "BACKEND_UNREACHABLE").metadata == {
        "prompt_id": "p-1",
        "backend": "comfyui-0",
    }
    early = failures.unavailable_before_accept("no event socket", "comfyui-0")
    assert (early.code, early.reason, early.metadata) == (
        grpc.StatusCode.UNAVAILABLE,
        "BACKEND_UNAVAILABLE",
        {"backend": "comfyui-0"},
    )
