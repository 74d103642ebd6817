"""Defects the fuzzing found and that were fixed, each pinned by its smallest case."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import duration_pb2

from bench.fuzz.cases import ANCHOR_RUNS, Case
from bench.fuzz.checks import Session
from generator_service.comfy.outputs import parse_history
from mediagen.v1 import gateway_pb2, generator_pb2, storage_pb2


async def status_of(session: Session, case: Case) -> grpc.StatusCode:
    answer = await session.target.call(case)
    assert not answer.output_statuses, answer.output_statuses
    return answer.status.code


@pytest.mark.parametrize("media_id", [f"{ANCHOR_RUNS[0]}.².0", f"{ANCHOR_RUNS[0]}.0.²", "x.٣.0"])
@pytest.mark.parametrize("service", ["storage", "gateway"])
async def test_a_media_id_with_non_ascii_digits_is_invalid_argument(
    fuzz_session: Session, media_id: str, service: str
) -> None:
    """``"²".isdigit()`` is true but ``int("²")`` raises: it used to end as INTERNAL."""
    case = Case(service, "GetMedia", "read", storage_pb2.GetMediaRequest(media_id=media_id))
    assert await status_of(fuzz_session, case) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("seconds", [2**63 - 1, 10**14, -(2**63)])
async def test_a_presign_ttl_beyond_timedelta_is_invalid_argument(
    fuzz_session: Session, seconds: int
) -> None:
    request = storage_pb2.PresignMediaRequest(
        media_id=f"{ANCHOR_RUNS[0]}.0.0", ttl=duration_pb2.Duration(seconds=seconds)
    )
    case = Case("storage", "PresignMedia", "presign", request)
    assert await status_of(fuzz_session, case) == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_output_timeout_beyond_timedelta_means_no_limit(fuzz_session: Session) -> None:
    """The gateway read it with ToTimedelta() and failed the output with INTERNAL OverflowError."""
    workflow = generator_pb2.WorkflowSpec(template="solid_image")
    workflow.parameters["width"].int_value = 8
    output = gateway_pb2.OutputSpec(workflow=workflow, timeout=duration_pb2.Duration(seconds=2**63 - 1))
    case = Case("gateway", "Generate", "timeout", gateway_pb2.GatewayGenerateRequest(outputs=[output]))
    answer = await fuzz_session.target.call(case)
    assert answer.status.code == grpc.StatusCode.OK
    assert answer.output_statuses == []
    assert answer.media_stored == 1


def test_history_node_ids_with_non_ascii_digits_are_ordered() -> None:
    entry = {
        "status": {"status_str": "success", "messages": []},
        "outputs": {"²": {"images": [{"filename": "a.png", "type": "output"}]}, "3": {"images": []}},
    }
    assert [f.node_id for f in parse_history(entry, False).files] == ["²"]
